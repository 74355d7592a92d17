//! The seed's example actions, so anyone can try the protocol by hand (and the cluster
//! tests have something to call): `site/test` echoes its params; `site/publish`
//! publishes through the server API; `site/sleep` takes its time, to watch calls spread
//! over processes and survive a process dying; `site/whoami` says who the server takes
//! the caller for. `cometd --demo` registers them (plain `cometd` does not); the chat demo
//! always does.

use std::time::Duration;

use actix::prelude::*;
use serde_json::json;

use crate::auth::PublishRule;
use crate::{Action, ActionError, ActionResult, CometBuilder, Payload};

/// The longest `site/sleep` on a node whose callers wait `action_timeout`: 90 % of it
/// (27 s by default), so a call never holds a worker longer than its caller waits and its
/// answer can still reach the caller.
pub fn max_sleep(action_timeout: Duration) -> Duration {
    action_timeout.mul_f64(0.9)
}

/// Registers `site/test`, `site/publish`, `site/sleep` and `site/whoami`. Call it inside
/// the actix system (the `site/test` actor is started here).
pub fn register(builder: CometBuilder) -> CometBuilder {
    builder
        .action("site/test", SiteTest.start())
        .action_fn("site/publish", publish)
        .action_fn("site/sleep", sleep)
        .action_fn("site/whoami", whoami)
}

/// Registers `n` echo routes `bench/echo0` … `bench/echo<n-1>`, each answering like
/// `site/test` (one [`SiteTest`] actor for all of them), for benchmarks that spread calls
/// over many routes (`cometd` does it when `COMET_BENCH_ROUTES=n` is set).
pub fn register_bench_routes(builder: CometBuilder, n: usize) -> CometBuilder {
    let echo = SiteTest.start();
    (0..n).fold(builder, |builder, i| {
        builder.action(format!("bench/echo{i}"), echo.clone())
    })
}

/// `site/test`: answers `{"echo": <params>}`. Written as an actor, the way comet handlers
/// usually are.
pub struct SiteTest;

impl Actor for SiteTest {
    type Context = Context<Self>;
}

impl Handler<Action> for SiteTest {
    type Result = ActionResult;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
        Ok(json!({ "echo": action.params() }))
    }
}

/// Whether the caller could publish `bytes` to `channel` itself, by its namespace's rules
/// (docs/SECURITY.md): the demo actions publish through the server API, which no rule
/// stops, so they must not lend a client the server's rights (e.g. post into the chat
/// demo's room as someone else). Answers `forbidden` in a namespace whose `publish` is
/// `subscribers` or `server`, or that has an `on_publish` hook; `not_authenticated` for an
/// anonymous caller where it is `authenticated`; `forbidden` on a user channel of other
/// users; `too_large` over the namespace's `max_payload_bytes`.
fn may_publish(action: &Action, channel: &str, bytes: usize) -> Result<(), ActionError> {
    let namespace = action.node().config().security.namespaces.of(channel);
    let user = action.user();
    match namespace.publish {
        PublishRule::Anyone => {}
        PublishRule::Authenticated if user.is_some() => {}
        PublishRule::Authenticated => {
            return Err(ActionError::new(
                "not_authenticated",
                format!("`{channel}`: only users may publish here"),
            ))
        }
        PublishRule::Subscribers | PublishRule::Server => {
            return Err(ActionError::new(
                "forbidden",
                format!("`{channel}`: the demo actions do not publish where clients may not"),
            ))
        }
    }
    if namespace.on_publish.is_some() {
        return Err(ActionError::new(
            "forbidden",
            format!("`{channel}`: its namespace checks publishes with a hook"),
        ));
    }
    namespace
        .user_may_use(channel, user)
        .map_err(|refusal| ActionError::new(refusal.code.as_str(), refusal.message))?;
    match namespace.max_payload_bytes {
        Some(max) if bytes > max => Err(ActionError::new(
            "too_large",
            format!("`{channel}` takes at most {max} bytes"),
        )),
        _ => Ok(()),
    }
}

/// `site/publish {channel, message}`: publishes `message` (a string as it is, other JSON
/// as its text) to `channel`, and answers `{"published": true, "channel": …}`. Only where
/// the caller could publish itself (see the namespace rules, docs/SECURITY.md): else
/// `forbidden` (or `not_authenticated`, `too_large`).
pub async fn publish(action: Action) -> ActionResult {
    let channel = action
        .str_param("channel")
        .ok_or_else(|| ActionError::new("bad_params", "`channel` (a string) is required"))?
        .to_owned();
    let message = action
        .param("message")
        .ok_or_else(|| ActionError::new("bad_params", "`message` is required"))?;
    let message = match message {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    may_publish(&action, &channel, message.len())?;
    action
        .node()
        .publish(&channel, Payload::from(message))
        .await
        .map_err(|err| ActionError::new("bad_params", err.to_string()))?;
    Ok(json!({ "published": true, "channel": channel }))
}

/// `site/sleep {ms, notify?}`: waits `ms` milliseconds (at most [`max_sleep`] of the
/// node's action timeout), then answers
/// `{"slept": ms, "node": <id of the process that ran it>}`. With `notify`, it first
/// publishes `started <node> <requestUid>` on that channel, so a watcher knows which
/// process took the call before it ends (where the caller could publish itself, as for
/// `site/publish`).
pub async fn sleep(action: Action) -> ActionResult {
    let ms = action
        .param("ms")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| ActionError::new("bad_params", "`ms` (a whole number) is required"))?;
    let wait = Duration::from_millis(ms).min(max_sleep(action.node().config().action_timeout));
    let node = action.node().id().to_owned();
    if let Some(channel) = action.str_param("notify") {
        let note = format!("started {node} {}", action.request_uid());
        may_publish(&action, channel, note.len())?;
        action
            .node()
            .publish(channel, note)
            .await
            .map_err(|err| ActionError::new("bad_params", err.to_string()))?;
    }
    actix_rt::time::sleep(wait).await;
    Ok(json!({ "slept": wait.as_millis() as u64, "node": node }))
}

/// `site/whoami`: answers `{"user": <the caller's user id, or null when anonymous>,
/// "connection": <the caller's connection id>}`, e.g.
/// `action {"connection":"ab12.7","requestUid":"1","user":"alice"}`: who the server takes
/// the caller for, after its `auth` frame (or `?token=`) if it sent one.
pub async fn whoami(action: Action) -> ActionResult {
    Ok(json!({
        "user": action.user(),
        "connection": action.connection().id.as_str(),
    }))
}
