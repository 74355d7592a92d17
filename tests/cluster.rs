//! The seed's two flows across several real `cometd` processes on a real Redis (each test
//! its own `redis-server` on a free port, and its own prefix), plus what a cluster must
//! survive: a process killed in the middle of an action, and Redis restarting.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/test_redis.rs"]
mod test_redis;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eventually::eventually;
use process::{Client, Cometd};
use serde_json::json;
use test_redis::TestRedis;

const LONG: Duration = Duration::from_secs(15);

/// The client channels `prefix`'s processes are subscribed to in Redis, sorted.
fn client_channels(redis: &TestRedis, prefix: &str) -> Vec<String> {
    let names = redis.names(prefix);
    redis
        .channels(&format!("{prefix}*"))
        .iter()
        .filter_map(|hub| match names.classify(hub) {
            comet::actors::hub::HubChannel::Channel(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect()
}

async fn a_channel_message_reaches_subscribers_on_every_process(redis: TestRedis) {
    let prefix = "chan:";
    let a = Cometd::server("a", &redis.args(), prefix, &["--listen-actions", "false"]);
    let b = Cometd::server("b", &redis.args(), prefix, &["--listen-actions", "false"]);
    let c = Cometd::server("c", &redis.args(), prefix, &["--listen-actions", "false"]);

    let mut a1 = a.connect().await;
    let mut a2 = a.connect().await;
    let mut b1 = b.connect().await;
    let mut c1 = c.connect().await;
    a1.subscribe("test").await;
    a2.subscribe("test").await;
    b1.subscribe("test").await;
    c1.subscribe("other").await;

    // A and B hold one Redis subscription each, however many clients; C holds none.
    let names = redis.names(prefix);
    assert_eq!(redis.numsub(&names.channel("test")), 2);
    assert_eq!(redis.numsub(&names.channel("other")), 1);

    a2.publish("test", "hello").await;
    assert!(
        a1.receives("test", "hello", LONG).await,
        "a1 on the publisher's process"
    );
    assert!(
        a2.receives("test", "hello", LONG).await,
        "a2, the publisher itself"
    );
    assert!(
        b1.receives("test", "hello", LONG).await,
        "b1 on another process"
    );
    // Published after `hello` by the same client, on the channel c1 has: once it is
    // there, `hello` would have been too.
    a2.publish("other", "marker").await;
    assert!(c1.receives("other", "marker", LONG).await);
    assert_eq!(
        c1.already_read(|f| f.starts_with("channel test ")),
        None,
        "c1 never subscribed"
    );

    // Messages from one publisher arrive in order, fired without waiting.
    for n in 0..50 {
        a2.publish("test", &format!("n{n}")).await;
    }
    for n in 0..50 {
        let frame = b1
            .expect("the next numbered message", LONG, |f| {
                f.starts_with("channel test n")
            })
            .await;
        assert_eq!(frame, format!("channel test n{n}"));
    }

    // The last subscriber of a process leaving unsubscribes that process in Redis.
    b1.unsubscribe("test").await;
    eventually("b leaves chan:channel:test", || async {
        redis.numsub(&names.channel("test")) == 1
    })
    .await;
    a1.unsubscribe("test").await;
    a2.unsubscribe("test").await;
    eventually("nobody is subscribed to chan:channel:test", || async {
        !client_channels(&redis, prefix).contains(&"test".to_owned())
    })
    .await;
    assert_eq!(client_channels(&redis, prefix), vec!["other".to_owned()]);

    // Internal channels are out of clients' reach: this is a client channel of its own.
    a1.subscribe("chan:actions").await;
    assert_eq!(redis.numsub(&names.channel("chan:actions")), 1);
    drop((a, b, c));
}

async fn actions_run_on_hub_servers_and_spread_over_them(redis: TestRedis) {
    let prefix = "act:";
    let server = Cometd::server("s", &redis.args(), prefix, &["--listen-actions", "false"]);
    let hub1 = Cometd::hub("h1", &redis.args(), prefix, &["--workers", "2"]);
    let hub2 = Cometd::hub("h2", &redis.args(), prefix, &["--workers", "2"]);
    let mut client = server.connect().await;

    let echo = client
        .call_and_wait("site/test", json!({ "text": "hi" }), LONG)
        .await;
    assert_eq!(echo["echo"], json!({ "text": "hi" }));

    let missing = client.call_and_wait("site/nope", json!({}), LONG).await;
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");

    // 12 calls of 300 ms, 4 workers in all: both hub servers must take some.
    let mut uids = Vec::new();
    for _ in 0..12 {
        uids.push(client.call("site/sleep", json!({ "ms": 300 })).await);
    }
    let answers = client.answers(&uids, LONG).await;
    let mut by_node: HashMap<String, usize> = HashMap::new();
    for answer in answers.values() {
        assert_eq!(answer["slept"], 300, "{answer}");
        let node = answer["node"].as_str().expect("a node id").to_owned();
        *by_node.entry(node).or_default() += 1;
    }
    let nodes: HashSet<&str> = by_node.keys().map(String::as_str).collect();
    assert_eq!(
        nodes,
        HashSet::from([hub1.node.as_str(), hub2.node.as_str()]),
        "calls ran on {by_node:?}"
    );

    // Nothing is left behind in Redis.
    for key in redis.keys(&redis.processing_pattern(prefix)) {
        let len: i64 = redis.query_key(&key, redis::cmd("LLEN").arg(&key));
        assert_eq!(len, 0, "{key} still holds calls");
    }
    let queue = redis.queue_key(prefix, "site/sleep");
    let waiting: i64 = redis.query_key(&queue, redis::cmd("LLEN").arg(&queue));
    assert_eq!(waiting, 0);
}

/// Waits for `started <node> <uid>` on the client's notify channel; answers the node.
async fn started(client: &mut Client, uid: &str) -> String {
    let suffix = format!(" {uid}");
    let frame = client
        .expect("a `started` notice", LONG, |f| {
            f.starts_with("channel sleeps started ") && f.ends_with(&suffix)
        })
        .await;
    frame["channel sleeps started ".len()..frame.len() - suffix.len()].to_owned()
}

async fn a_call_whose_process_is_killed_runs_again_elsewhere(redis: TestRedis) {
    let prefix = "kill:";
    let ttl = ["--process-ttl-ms", "1500"];
    let server = Cometd::server("s", &redis.args(), prefix, &["--listen-actions", "false"]);
    let mut hubs = vec![
        Cometd::hub("h1", &redis.args(), prefix, &ttl),
        Cometd::hub("h2", &redis.args(), prefix, &ttl),
    ];
    let mut client = server.connect().await;
    client.subscribe("sleeps").await;

    let uid = client
        .call("site/sleep", json!({ "ms": 2000, "notify": "sleeps" }))
        .await;
    let first = started(&mut client, &uid).await;
    let victim = hubs
        .iter()
        .position(|hub| hub.node == first)
        .expect("a hub server took the call");
    hubs[victim].kill9();
    let survivor = hubs[1 - victim].node.clone();

    // After the victim's heartbeat expires, the survivor takes the call again.
    let second = started(&mut client, &uid).await;
    assert_eq!(second, survivor);
    let answer = client.answer(&uid, LONG).await;
    assert_eq!(answer["node"], json!(survivor), "{answer}");
    assert_eq!(answer["slept"], 2000);

    // A live process's long call (longer than the heartbeat TTL) is not run twice, even
    // with an idle process beside it.
    hubs.push(Cometd::hub("h3", &redis.args(), prefix, &ttl));
    let uid = client
        .call("site/sleep", json!({ "ms": 3500, "notify": "sleeps" }))
        .await;
    started(&mut client, &uid).await;
    client.answer(&uid, LONG).await;
    let suffix = format!(" {uid}");
    client.round_trip("sleeps", "marker").await;
    let again =
        client.already_read(|f| f.starts_with("channel sleeps started ") && f.ends_with(&suffix));
    assert_eq!(again, None, "the call ran twice");
}

async fn channel_delivery_resumes_after_redis_restarts(mut redis: TestRedis) {
    let prefix = "restart:";
    let a = Cometd::server("a", &redis.args(), prefix, &[]);
    let b = Cometd::server("b", &redis.args(), prefix, &[]);
    let mut a1 = a.connect().await;
    let mut a2 = a.connect().await;
    let mut b1 = b.connect().await;
    a1.subscribe("test").await;
    b1.subscribe("test").await;
    a2.publish("test", "before").await;
    assert!(a1.receives("test", "before", LONG).await);
    assert!(b1.receives("test", "before", LONG).await);

    redis.kill();

    // Redis is down: a process still delivers its own clients' messages to its own
    // subscribers, and tells the publisher the others did not get it.
    a2.publish("test", "while-down").await;
    assert!(a1.receives("test", "while-down", LONG).await);
    let error = a2
        .expect("the publish error", LONG, |f| f.starts_with("error "))
        .await;
    assert!(error.contains("unavailable"), "{error}");
    // A subscription made meanwhile is recorded; `subscribed` comes when Redis is back.
    let mut a3 = a.connect().await;
    a3.send("subscribe late").await;
    let refused = a3
        .expect("the subscription error", LONG, |f| f.starts_with("error "))
        .await;
    assert!(refused.contains("unavailable"), "{refused}");

    redis.restart();

    a3.expect("subscribed late", LONG, |f| f == "subscribed late")
        .await;
    // Pub/sub is at most once: publish until both processes' subscribers hear it.
    // Each round is one publish and a look at what arrived meanwhile; the polling is the
    // shared helper's.
    {
        let (heard_a, heard_b) = (std::cell::Cell::new(false), std::cell::Cell::new(false));
        let (a1_cell, b1_cell, a2_cell) = (
            tokio::sync::Mutex::new(&mut a1),
            tokio::sync::Mutex::new(&mut b1),
            tokio::sync::Mutex::new(&mut a2),
        );
        let n = std::cell::Cell::new(0);
        eventually("delivery resumes on both processes", || async {
            a2_cell
                .lock()
                .await
                .publish("test", &format!("after-{}", n.get()))
                .await;
            n.set(n.get() + 1);
            let after = |f: &str| f.starts_with("channel test after-");
            if !heard_a.get() {
                heard_a.set(
                    a1_cell
                        .lock()
                        .await
                        .find(Duration::ZERO, after)
                        .await
                        .is_some(),
                );
            }
            if !heard_b.get() {
                heard_b.set(
                    b1_cell
                        .lock()
                        .await
                        .find(Duration::ZERO, after)
                        .await
                        .is_some(),
                );
            }
            heard_a.get() && heard_b.get()
        })
        .await;
    }
    a2.publish("test", "steady").await;
    assert!(a1.receives("test", "steady", LONG).await);
    assert!(b1.receives("test", "steady", LONG).await);
    // What was published while Redis was down never reached the other process: not
    // before the deliveries after it either.
    assert_eq!(
        b1.already_read(|f| f == "channel test while-down"),
        None,
        "b1 got a message published while Redis was down"
    );
    a2.publish("late", "hello-late").await;
    assert!(a3.receives("late", "hello-late", LONG).await);

    // Actions too: the routes are declared again at the next heartbeat.
    let b1 = tokio::sync::Mutex::new(b1);
    eventually("actions come back", || async {
        let answer = b1
            .lock()
            .await
            .call_and_wait("site/test", json!({ "n": 1 }), LONG)
            .await;
        answer.get("echo").is_some()
    })
    .await;
}

async fn processes_started_while_redis_is_down_join_once_it_is_up(mut redis: TestRedis) {
    redis.kill();
    let prefix = "late:";
    // Both start (and say ready) without Redis; their clients are served locally.
    let a = Cometd::server("a", &redis.args(), prefix, &[]);
    let b = Cometd::server("b", &redis.args(), prefix, &["--listen-actions", "false"]);
    let mut a1 = a.connect().await;
    let mut b1 = b.connect().await;
    a1.send("subscribe test").await;
    b1.send("subscribe test").await;
    let refused = b1.call_and_wait("site/test", json!({}), LONG).await;
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");

    redis.restart();

    a1.expect("subscribed test", LONG, |f| f == "subscribed test")
        .await;
    b1.expect("subscribed test", LONG, |f| f == "subscribed test")
        .await;
    {
        let caller = tokio::sync::Mutex::new(&mut b1);
        eventually("actions come", || async {
            let answer = caller
                .lock()
                .await
                .call_and_wait("site/test", json!({ "n": 2 }), LONG)
                .await;
            answer["echo"] == json!({ "n": 2 })
        })
        .await;
    }
    b1.publish("test", "joined").await;
    assert!(a1.receives("test", "joined", LONG).await);
    assert!(b1.receives("test", "joined", LONG).await);
}

/// `{"deep":[[…1…]]}` with `arrays` arrays: the object is level 1, so `arrays + 1` deep.
fn nested(arrays: usize) -> serde_json::Value {
    let text = format!("{{\"deep\":{}1{}}}", "[".repeat(arrays), "]".repeat(arrays));
    serde_json::from_str(&text).expect("valid JSON")
}

async fn a_call_no_process_could_read_is_refused_at_the_edge(redis: TestRedis) {
    let prefix = "deep:";
    let server = Cometd::server("s", &redis.args(), prefix, &["--listen-actions", "false"]);
    let _hub = Cometd::hub("h", &redis.args(), prefix, &[]);
    let mut client = server.connect().await;

    // Within max_json_depth (64): run on the other process and echoed back.
    let params = nested(63);
    let echo = client
        .call_and_wait("site/test", params.clone(), LONG)
        .await;
    assert_eq!(echo["echo"], params, "{echo}");

    // Deeper (the object and 126 arrays, which the hub process could not read back out
    // of the queue): refused at once with the call's requestUid, not left to time out.
    let refused = client.call_and_wait("site/test", nested(126), LONG).await;
    assert_eq!(refused["error"]["code"], "bad_json", "{refused}");
    assert_eq!(
        redis.keys(&format!("{prefix}*dead")),
        Vec::<String>::new(),
        "nothing reached the dead-letter list"
    );
}

async fn a_call_queued_for_a_dead_process_times_out_never_runs_and_leaves_redis(redis: TestRedis) {
    let prefix = "stranded:";
    let server = Cometd::server(
        "s",
        &redis.args(),
        prefix,
        &["--listen-actions", "false", "--action-timeout-ms", "1000"],
    );
    // A long heartbeat TTL: the route still counts as served long after the process died.
    let mut first = Cometd::hub("h1", &redis.args(), prefix, &["--process-ttl-ms", "60000"]);
    let mut client = server.connect().await;
    client.subscribe("sleeps").await;
    let echo = client.call_and_wait("site/test", json!({}), LONG).await;
    assert!(echo.get("echo").is_some(), "{echo}");
    first.kill9();

    let uid = client
        .call("site/sleep", json!({ "ms": 10, "notify": "sleeps" }))
        .await;
    let answer = client.answer(&uid, LONG).await;
    assert_eq!(answer["error"]["code"], "timeout", "{answer}");
    // The call does not wait in Redis for a process that may never come.
    eventually("the stranded call leaves Redis", || async {
        let queue = redis.queue_key(prefix, "site/sleep");
        redis.query_key::<i64>(&queue, redis::cmd("EXISTS").arg(&queue)) == 0
    })
    .await;

    // A process for the route comes back: it runs new calls, never the stranded one.
    let _second = Cometd::hub("h2", &redis.args(), prefix, &[]);
    let fresh = client
        .call_and_wait("site/sleep", json!({ "ms": 10, "notify": "sleeps" }), LONG)
        .await;
    assert_eq!(fresh["slept"], 10, "{fresh}");
    let suffix = format!(" {uid}");
    client.round_trip("sleeps", "marker").await;
    let late =
        client.already_read(|f| f.starts_with("channel sleeps started ") && f.ends_with(&suffix));
    assert_eq!(
        late, None,
        "the stranded call ran after its caller was told `timeout`"
    );
}

/// Reads `channel <channel> <n>` frames until `channel <channel> end`, in the order they
/// came; panics if `end` does not come within `LONG` of the previous frame.
async fn sequence_until_end(client: &mut Client, channel: &str) -> Vec<u64> {
    let prefix = format!("channel {channel} ");
    let mut got = Vec::new();
    loop {
        let frame = client
            .expect("the next message of the stream", LONG, |f| {
                f.starts_with(&prefix)
            })
            .await;
        match &frame[prefix.len()..] {
            "end" => return got,
            n => got.push(n.parse().expect("a sequence number")),
        }
    }
}

async fn no_message_of_a_process_is_lost_for_its_own_subscribers_when_redis_comes_back(
    mut redis: TestRedis,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let prefix = "back:";
    let a = Cometd::server("a", &redis.args(), prefix, &["--listen-actions", "false"]);
    let mut subscriber = a.connect().await;
    subscriber.subscribe("seq").await;
    let mut publisher = a.connect().await;

    // A steady stream, one message per 20 ms, numbered; `sent` counts what went out.
    let sent = Arc::new(AtomicU64::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let stream = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        let n = sent.load(Ordering::SeqCst);
                        publisher.publish("seq", &n.to_string()).await;
                        sent.store(n + 1, Ordering::SeqCst);
                    }
                }
            }
            publisher
        })
    };
    let sent_at_least = |count: u64| {
        let sent = sent.clone();
        async move {
            eventually("the stream went on", || {
                let went_on = sent.load(Ordering::SeqCst) >= count;
                async move { went_on }
            })
            .await
        }
    };

    // The stream flows through Redis; then Redis dies for a while (about 50 messages).
    sent_at_least(10).await;
    let before = sent.load(Ordering::SeqCst);
    redis.kill();
    sent_at_least(before + 50).await;
    // Started again (the stream goes on meanwhile); everything sent from now on must
    // arrive, in order, exactly once: whether the publisher or the subscriber
    // connection of the process is back first.
    let redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .expect("restarting Redis");
    let from = sent.load(Ordering::SeqCst);
    // Until the process has subscribed again, and some more after.
    eventually("the process subscribed again", || {
        let subscribed = redis.numsub(&redis.names(prefix).channel("seq")) == 1;
        async move { subscribed }
    })
    .await;
    let resubscribed = sent.load(Ordering::SeqCst);
    sent_at_least(resubscribed + 25).await;
    let _ = stop.send(());
    let mut publisher = stream.await.expect("the stream task");
    publisher.publish("seq", "end").await;

    let got = sequence_until_end(&mut subscriber, "seq").await;
    let last = sent.load(Ordering::SeqCst);
    let after: Vec<u64> = got.iter().copied().filter(|n| *n >= from).collect();
    assert_eq!(
        after,
        (from..last).collect::<Vec<u64>>(),
        "messages {from}..{last} (sent after Redis was back) did not all arrive once, in \
         order (subscribed again at {resubscribed})"
    );
    // Nothing arrived twice or out of order, from before the restart either.
    assert!(
        got.windows(2).all(|pair| pair[0] < pair[1]),
        "a message arrived twice or out of order: {got:?}"
    );
}

redis_tests!(
    a_channel_message_reaches_subscribers_on_every_process,
    actions_run_on_hub_servers_and_spread_over_them,
    a_call_whose_process_is_killed_runs_again_elsewhere,
    channel_delivery_resumes_after_redis_restarts,
    processes_started_while_redis_is_down_join_once_it_is_up,
    a_call_no_process_could_read_is_refused_at_the_edge,
    a_call_queued_for_a_dead_process_times_out_never_runs_and_leaves_redis,
    no_message_of_a_process_is_lost_for_its_own_subscribers_when_redis_comes_back,
);
