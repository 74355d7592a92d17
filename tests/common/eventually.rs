//! The one way the integration tests wait for server-side state that has no event of its
//! own (a session reaped, a subscription released in Redis, a route declared again):
//! poll a check every few milliseconds until it holds, and fail after a generous bound.
//! Everything else synchronises on an event (a frame, a close, a process's line, a
//! `ConnectionEvent`, a Redis reply). Included with `#[path]` by `common`,
//! `sockjs_support` and the tests on real processes.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits at most: far beyond what any check needs, so that a slow
/// machine never fails a test; only a broken one waits this long.
pub const EVENTUALLY_WITHIN: Duration = Duration::from_secs(20);

/// How often [`eventually`] checks.
const EVERY: Duration = Duration::from_millis(20);

/// Waits until `check` answers true, checking every 20 ms; fails the test with `what`
/// after [`EVENTUALLY_WITHIN`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY_WITHIN;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(EVERY).await;
    }
}
