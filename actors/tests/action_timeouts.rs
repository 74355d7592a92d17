//! Action calls that get no answer in time, at actor level on paused time: the worker
//! answers `timeout` once `action_timeout` has passed, never before; a call that waits for
//! a busy worker is answered `timeout` by its connection itself.

mod support;

use std::time::Duration;

use comet_actors::NodeConfig;
use support::since;
use support::{never_answers, node, Client};
use tokio::time::Instant;

fn config(action_timeout: Duration, workers: usize) -> NodeConfig {
    NodeConfig {
        action_timeout,
        workers,
        // No heartbeat to step over while the clock jumps.
        heartbeat_interval: Duration::from_secs(3600),
        client_timeout: Duration::from_secs(7200),
        ..NodeConfig::default()
    }
}

#[actix_rt::test]
async fn a_handler_that_does_not_answer_in_time_is_answered_timeout() {
    tokio::time::pause();
    let timeout = Duration::from_secs(5);
    let node = node(config(timeout, 1), never_answers());
    let mut client = Client::start(&node);
    let called = Instant::now();
    client.send(r#"action test/never {"requestUid":"1"}"#);
    let answer = client.answer().await;
    assert_eq!(answer["requestUid"], "1");
    assert_eq!(answer["error"]["code"], "timeout", "{answer:?}");
    // On the paused clock: not a moment before the timeout.
    assert!(since(called) >= timeout, "{:?}", since(called));
}

#[actix_rt::test]
async fn a_call_no_worker_gets_to_is_answered_timeout_by_its_connection() {
    tokio::time::pause();
    let timeout = Duration::from_secs(5);
    // One worker: the first call holds it until its own timeout, the second waits.
    let node = node(config(timeout, 1), never_answers());
    let mut client = Client::start(&node);
    let called = Instant::now();
    client.send(r#"action test/never {"requestUid":"first"}"#);
    client.send(r#"action test/never {"requestUid":"second"}"#);

    let first = client.answer().await;
    assert_eq!(first["requestUid"], "first");
    assert_eq!(first["error"]["code"], "timeout", "{first:?}");
    assert!(since(called) >= timeout);

    // The second one started only now on the worker: its connection's own timer (the
    // timeout and a grace) answers it, whatever the worker does later.
    let second = client.answer().await;
    assert_eq!(second["requestUid"], "second");
    assert_eq!(second["error"]["code"], "timeout", "{second:?}");
    let message = second["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "no answer within 5000 ms", "{second:?}");
    assert!(since(called) > timeout);
}
