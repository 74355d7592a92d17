//! Graceful shutdown of real `cometd` processes on a real Redis (each test its own
//! `redis-server` on a free port): on SIGTERM a process stops accepting, tells its
//! clients to reconnect elsewhere (WebSocket close 1001, SockJS `c[1001,…]`), lets its
//! running action calls finish, and gives back (once) those that do not finish in time.
//! A process that dies in the middle of its drain has its calls run elsewhere, once.
//!
//! Runs are counted through `site/sleep`'s `notify`: it publishes `started <node> <uid>`
//! on a channel the caller listens to, every time a process starts the call.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use eventually::eventually;
use futures_util::StreamExt;
use process::{Client, Cometd};
use redis_server::RedisServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(15);

/// Waits for the next `started <node> <uid>` of call `uid`; answers the node.
async fn started(client: &mut Client, uid: &str, within: Duration) -> Option<String> {
    let suffix = format!(" {uid}");
    let frame = client
        .find(within, |f| {
            f.starts_with("channel runs started ") && f.ends_with(&suffix)
        })
        .await?;
    Some(frame["channel runs started ".len()..frame.len() - suffix.len()].to_owned())
}

/// Whether call `uid` was started again (by which node) before a marker the caller
/// publishes on `runs` now comes back: every `started` notice published before it has
/// arrived by then.
async fn ran_again(client: &mut Client, uid: &str) -> Option<String> {
    client.round_trip("runs", "marker").await;
    let suffix = format!(" {uid}");
    let frame =
        client.already_read(|f| f.starts_with("channel runs started ") && f.ends_with(&suffix))?;
    Some(frame["channel runs started ".len()..frame.len() - suffix.len()].to_owned())
}

/// Calls `site/sleep` for `ms`, notifying `runs`; answers the requestUid once a process
/// started it, and which one.
async fn call_sleep(client: &mut Client, ms: u64) -> (String, String) {
    let uid = client
        .call("site/sleep", json!({ "ms": ms, "notify": "runs" }))
        .await;
    let node = started(client, &uid, LONG)
        .await
        .expect("a process starts the call");
    (uid, node)
}

/// What is left in Redis under `prefix`: calls waiting or held, and the processes the
/// queue still counts.
fn leftovers(redis: &RedisServer, prefix: &str) -> (i64, i64, Vec<String>) {
    let mut waiting = 0;
    for key in redis.query::<Vec<String>>(redis::cmd("KEYS").arg(format!("{prefix}queue:*"))) {
        waiting += redis.query::<i64>(redis::cmd("LLEN").arg(&key));
    }
    let mut held = 0;
    for key in redis.query::<Vec<String>>(redis::cmd("KEYS").arg(format!("{prefix}processing:*"))) {
        held += redis.query::<i64>(redis::cmd("LLEN").arg(&key));
    }
    let consumers = redis.query(redis::cmd("SMEMBERS").arg(format!("{prefix}consumers")));
    (waiting, held, consumers)
}

/// A SockJS client on the SockJS WebSocket transport of `server`; answers it once open.
async fn sockjs_client(
    server: &Cometd,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let addr = server.addr.as_deref().expect("a server process");
    let url = format!("ws://{addr}/comet/000/drain1/websocket");
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("a SockJS WebSocket session");
    let open = socket.next().await.expect("a frame").expect("a text frame");
    assert_eq!(open, Message::text("o"));
    socket
}

/// The next text frame of a SockJS session, skipping heartbeats.
async fn sockjs_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<String> {
    loop {
        match tokio::time::timeout(LONG, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() != "h" => {
                return Some(text.to_string())
            }
            Ok(Some(Ok(Message::Text(_)))) => continue,
            _ => return None,
        }
    }
}

/// A cluster in the middle of a handover: an edge process holding the caller, the
/// process about to leave (started with `leaving_args`) running the caller's
/// `site/sleep` call of `ms`, and another action process that could take the call over.
struct Handover {
    redis: RedisServer,
    /// Holds the caller's connection; runs no actions. Kept for as long as the test.
    _edge: Cometd,
    leaving: Cometd,
    staying: Cometd,
    caller: Client,
    uid: String,
}

impl Handover {
    async fn start(
        prefix: &str,
        ms: u64,
        leaving_args: &[&str],
        staying_args: &[&str],
    ) -> Handover {
        let redis = RedisServer::start();
        let edge = Cometd::server(
            "edge",
            &redis.args(),
            prefix,
            &["--listen-actions", "false"],
        );
        let leaving = Cometd::hub("leaving", &redis.args(), prefix, leaving_args);
        let mut caller = edge.connect().await;
        caller.subscribe("runs").await;
        let (uid, first) = call_sleep(&mut caller, ms).await;
        assert_eq!(first, leaving.node);
        let staying = Cometd::hub("staying", &redis.args(), prefix, staying_args);
        Handover {
            redis,
            _edge: edge,
            leaving,
            staying,
            caller,
            uid,
        }
    }

    /// The call is started again, on the staying process, which answers it; and never
    /// a third time.
    async fn runs_again_once_on_the_staying_process(&mut self) {
        let second = started(&mut self.caller, &self.uid, LONG).await;
        assert_eq!(second.as_deref(), Some(self.staying.node.as_str()));
        let answer = self.caller.answer(&self.uid, LONG).await;
        assert_eq!(answer["node"], json!(self.staying.node), "{answer}");
        assert_eq!(ran_again(&mut self.caller, &self.uid).await, None);
    }
}

#[tokio::test]
async fn sigterm_lets_a_running_call_finish_and_sends_clients_elsewhere() {
    let redis = RedisServer::start();
    let prefix = "drain1:";
    let edge = Cometd::server(
        "edge",
        &redis.args(),
        prefix,
        &["--listen-actions", "false"],
    );
    // Holds clients and runs actions; the only process that runs them when the call comes.
    let mut leaving = Cometd::server("leaving", &redis.args(), prefix, &[]);
    let mut caller = edge.connect().await;
    caller.subscribe("runs").await;
    let mut websocket = leaving.connect().await;
    websocket.subscribe("news").await;
    let mut sockjs = sockjs_client(&leaving).await;

    let (uid, first) = call_sleep(&mut caller, 2500).await;
    assert_eq!(first, leaving.node);
    // Another process that could take the call, were it ever given back.
    let staying = Cometd::hub("staying", &redis.args(), prefix, &[]);

    leaving.terminate();

    // Its clients are told to reconnect elsewhere, at once.
    assert_eq!(websocket.close_code(LONG).await, Some(1001));
    assert_eq!(
        sockjs_frame(&mut sockjs).await.as_deref(),
        Some("c[1001,\"Server shutting down\"]")
    );
    // It accepts nobody meanwhile: a client trying now is never served (its attempt
    // ends with the process at the latest), or, accepted just before the pause, is
    // closed with 1001 at once.
    let addr = leaving.addr.clone().expect("a server process");
    let late = tokio::spawn(async move {
        match tokio_tungstenite::connect_async(format!("ws://{addr}/comet/websocket")).await {
            Err(_) => None,
            Ok((mut socket, _)) => Some(tokio::time::timeout(LONG, socket.next()).await),
        }
    });

    // The running call finishes there, and its caller (on another process) gets the answer.
    let answer: Value = caller.answer(&uid, LONG).await;
    assert_eq!(answer["node"], json!(leaving.node), "{answer}");
    assert_eq!(answer["slept"], 2500);
    let status = leaving
        .wait_exit(LONG)
        .expect("the process exits after its drain");
    assert!(status.success(), "{status:?}");
    if let Some(frame) = late.await.expect("the late client's task") {
        assert!(
            matches!(&frame, Ok(Some(Ok(Message::Close(Some(close))))) if u16::from(close.code) == 1001),
            "a client connected during the drain: {frame:?}"
        );
    }

    // It ran once: no process started it again.
    assert_eq!(ran_again(&mut caller, &uid).await, None);
    let (waiting, held, consumers) = leftovers(&redis, prefix);
    assert_eq!((waiting, held), (0, 0));
    assert_eq!(
        consumers.len(),
        1,
        "the leaving process left the queue: {consumers:?}"
    );

    // The cluster carries on without it.
    let echo = caller
        .call_and_wait("site/test", json!({ "after": true }), LONG)
        .await;
    assert_eq!(echo["echo"], json!({ "after": true }));
    drop((edge, staying));
}

#[tokio::test]
async fn a_call_still_running_when_the_drain_ends_is_given_back_once_and_run_elsewhere() {
    let prefix = "drain2:";
    let mut cluster = Handover::start(prefix, 2500, &["--shutdown-timeout-ms", "300"], &[]).await;

    cluster.leaving.terminate();
    let status = cluster
        .leaving
        .wait_exit(LONG)
        .expect("the process exits once its drain timed out");
    assert!(status.success(), "{status:?}");
    // It gave the call back itself as it left, rather than leaving it to another
    // process's reaper once its heartbeat (10 s) expired.
    let said = cluster.leaving.logged();
    assert!(
        said.contains("still running when shutdown_timeout ran out; putting it back"),
        "{}",
        cluster.leaving.log.display()
    );

    // Given back once: run once more, no third run, no second answer.
    cluster.runs_again_once_on_the_staying_process().await;
    assert!(
        !cluster
            .staying
            .logged()
            .contains("taken by a process that died"),
        "the staying process reaped the call instead: {}",
        cluster.staying.log.display()
    );
    let uid = cluster.uid.clone();
    cluster.caller.round_trip("runs", "marker").await;
    let again = cluster.caller.already_read(|f| f.contains(&uid));
    assert_eq!(again, None);
    let (waiting, held, consumers) = leftovers(&cluster.redis, prefix);
    assert_eq!((waiting, held), (0, 0));
    assert_eq!(consumers.len(), 1, "{consumers:?}");
}

#[tokio::test]
async fn a_process_that_dies_while_draining_has_its_call_run_once_elsewhere() {
    let prefix = "drain3:";
    let ttl = ["--process-ttl-ms", "1500"];
    let mut cluster = Handover::start(prefix, 6000, &ttl, &ttl).await;

    cluster.leaving.terminate();
    eventually("the leaving process drains", || async {
        cluster
            .leaving
            .logged()
            .contains("running action(s) to finish")
    })
    .await;
    // While it drains, its heartbeat goes on: nobody takes its call meanwhile. Five
    // passes of the staying process's reaper (one per heartbeat, every ttl / 3) span
    // more than the TTL.
    let staying = cluster.staying.consumer();
    let mut passes = cluster.redis.reaper_passes("drain3:", &staying);
    for _ in 0..5 {
        passes
            .recv()
            .await
            .expect("the staying process's reaper runs");
    }
    drop(passes);
    assert_eq!(ran_again(&mut cluster.caller, &cluster.uid).await, None);
    cluster.leaving.kill9();

    // Its heartbeat expires; the other process puts the call back and runs it, once.
    cluster.runs_again_once_on_the_staying_process().await;
    let (waiting, held, _) = leftovers(&cluster.redis, prefix);
    assert_eq!((waiting, held), (0, 0));
}

#[tokio::test]
async fn a_second_sigterm_stops_at_once_and_the_call_still_runs_once_elsewhere() {
    let ttl = ["--process-ttl-ms", "1500"];
    let mut cluster = Handover::start("drain4:", 6000, &ttl, &ttl).await;

    cluster.leaving.terminate();
    // The first signal is heard: the drain waits for the running call.
    eventually("the leaving process drains", || async {
        cluster
            .leaving
            .logged()
            .contains("running action(s) to finish")
    })
    .await;
    cluster.leaving.terminate();
    let status = cluster
        .leaving
        .wait_exit(LONG)
        .expect("a second SIGTERM stops the process");
    assert!(status.success(), "{status:?}");
    assert!(
        cluster
            .leaving
            .logged()
            .contains("second stop signal: stopping now"),
        "{}",
        cluster.leaving.log.display()
    );

    // It did not wait for the call (6 s): the staying process runs it and answers it,
    // the leaving one never did.
    cluster.runs_again_once_on_the_staying_process().await;
}
