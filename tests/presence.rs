//! Presence across real `cometd` processes on a test-started Redis: entries appear and go
//! with subscribe, unsubscribe and disconnect on either process, two tabs of one user are
//! two entries and one user, a process killed with `kill -9` has its entries removed and
//! announced as leaves (within `presence_ttl`), and a Redis restarted without persistence
//! gets every live entry back from the processes.

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

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use comet::auth::{unix_now, Claims, TokenSigner};
use eventually::eventually;
use process::{Client, Cometd};
use serde_json::{json, Value};
use test_redis::TestRedis;

const SECRET: &str = "presence test secret: 32 bytes and more";

/// How long a test waits for a frame that must come.
const WITHIN: Duration = Duration::from_secs(15);

/// A config file with a `room` namespace with presence and join/leave.
struct Config(PathBuf);

impl Config {
    fn new(name: &str) -> Config {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("presence-{name}-{}.toml", std::process::id()));
        let text = "[namespaces.room]\npresence = true\njoin_leave = true\npresence_ttl = 2\njoin_leave_window_ms = 50\n";
        std::fs::write(&path, text).expect("cannot write the config file");
        Config(path)
    }

    fn args(&self) -> Vec<&str> {
        let path = self.0.to_str().expect("a UTF-8 path");
        vec!["--config", path, "--token-hmac-secret", SECRET]
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A client of `server` signed in as `user` (anonymous without one).
async fn client(server: &Cometd, user: Option<&str>) -> Client {
    let mut client = server.connect().await;
    if let Some(user) = user {
        let token = TokenSigner::hmac(SECRET.as_bytes())
            .unwrap()
            .sign(&Claims {
                sub: Some(user.into()),
                exp: Some(unix_now() + 600),
                info: Some(json!({ "name": user })),
                ..Claims::default()
            })
            .unwrap();
        client.send(format!("auth {token}")).await;
        client
            .expect("authenticated", WITHIN, |f| f.starts_with("authenticated "))
            .await;
    }
    client
}

/// Collects `kind` events (`join` / `leave`) of `channel` until `count` entries came;
/// answers the entries.
async fn events(client: &mut Client, kind: &str, channel: &str, count: usize) -> Vec<Value> {
    let prefix = format!("{kind} {channel} ");
    let mut entries = Vec::new();
    while entries.len() < count {
        let frame = client
            .expect(&format!("{prefix}…"), WITHIN, |f| f.starts_with(&prefix))
            .await;
        let batch: Vec<Value> = serde_json::from_str(&frame[prefix.len()..]).expect("JSON");
        entries.extend(batch);
    }
    assert_eq!(entries.len(), count, "no more {kind} than expected");
    entries
}

/// Asks `presence` or `presence_stats` of `channel` through `client`.
async fn ask(client: &mut Client, request: &str, channel: &str) -> Value {
    let uid = format!("{request}-{}", unix_now_ms());
    client
        .send(format!(r#"{request} {channel} {{"requestUid":"{uid}"}}"#))
        .await;
    client.answer(&uid, WITHIN).await
}

fn unix_now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn users(entries: &[Value]) -> BTreeSet<String> {
    entries
        .iter()
        .map(|e| e["user"].as_str().unwrap_or("-").to_owned())
        .collect()
}

async fn entries_follow_members_on_either_process_two_tabs_are_one_user(redis: TestRedis) {
    let config = Config::new("follow");
    let prefix = format!("presence-follow-{}:", std::process::id());
    let a = Cometd::server("a", &redis.args(), &prefix, &config.args());
    let b = Cometd::server("b", &redis.args(), &prefix, &config.args());

    let mut ann = client(&a, Some("ann")).await;
    ann.send(r#"subscribe room:1 {"joinLeave":true}"#).await;
    ann.expect("subscribed", WITHIN, |f| f == "subscribed room:1")
        .await;
    let mut tab1 = client(&b, Some("bob")).await;
    let mut tab2 = client(&b, Some("bob")).await;
    let mut guest = client(&a, None).await;
    for member in [&mut tab1, &mut tab2, &mut guest] {
        member.subscribe("room:1").await;
    }
    let joined = events(&mut ann, "join", "room:1", 3).await;
    assert_eq!(users(&joined), BTreeSet::from(["-".into(), "bob".into()]));
    assert!(joined.iter().all(|e| e["user"] != "ann"), "never oneself");
    let bob = joined.iter().find(|e| e["user"] == "bob").unwrap();
    assert_eq!(bob["info"], json!({ "name": "bob" }));

    // The same from both processes, read from Redis.
    for client in [&mut ann, &mut guest] {
        let presence = ask(client, "presence", "room:1").await;
        let clients = presence["clients"].as_object().expect("clients");
        assert_eq!(clients.len(), 4, "{presence}");
        let stats = ask(client, "presence_stats", "room:1").await;
        assert_eq!(
            (stats["clients"].clone(), stats["users"].clone()),
            (json!(4), json!(2))
        );
    }
    // Everything of the channel shares one slot (its hash tag, or its partition's).
    let keys = redis.names(&prefix).presence("room:1");
    let stored: BTreeSet<String> = redis.keys(&format!("{prefix}*")).into_iter().collect();
    for key in [&keys.entries, &keys.users, &keys.vouched] {
        assert!(stored.contains(key), "{key} in {stored:?}");
        assert_eq!(
            comet::actors::hub::partitions::slot(key.as_bytes()),
            comet::actors::hub::partitions::slot(keys.events.as_bytes())
        );
    }

    // One tab unsubscribes, the other disconnects: two leaves; bob is gone as a user.
    tab2.unsubscribe("room:1").await;
    let left = events(&mut ann, "leave", "room:1", 1).await;
    assert_eq!(left[0]["user"], "bob");
    let stats = ask(&mut ann, "presence_stats", "room:1").await;
    assert_eq!(
        (stats["clients"].clone(), stats["users"].clone()),
        (json!(3), json!(2))
    );
    drop(tab1);
    events(&mut ann, "leave", "room:1", 1).await;
    guest.unsubscribe("room:1").await;
    events(&mut ann, "leave", "room:1", 1).await;
    let stats = ask(&mut ann, "presence_stats", "room:1").await;
    assert_eq!(
        (stats["clients"].clone(), stats["users"].clone()),
        (json!(1), json!(1))
    );
    // The last member leaves: nothing of the channel is left in Redis.
    ann.unsubscribe("room:1").await;
    eventually("the presence keys are gone", || async {
        redis.keys(&format!("{prefix}*presence*")).is_empty()
    })
    .await;
}

async fn a_killed_processs_members_leave_within_the_presence_ttl(redis: TestRedis) {
    let config = Config::new("kill");
    let prefix = format!("presence-kill-{}:", std::process::id());
    let a = Cometd::server("a", &redis.args(), &prefix, &config.args());
    let mut b = Cometd::server("b", &redis.args(), &prefix, &config.args());

    let mut ann = client(&a, Some("ann")).await;
    ann.send(r#"subscribe room:k {"joinLeave":true}"#).await;
    ann.expect("subscribed", WITHIN, |f| f == "subscribed room:k")
        .await;
    let mut on_b = Vec::new();
    for user in ["bob", "carol"] {
        let mut member = client(&b, Some(user)).await;
        member.subscribe("room:k").await;
        on_b.push(member);
    }
    events(&mut ann, "join", "room:k", 2).await;
    b.kill9();
    // No goodbye from b: the others find its entries out of date (presence_ttl = 2 s) and
    // announce them.
    let left = events(&mut ann, "leave", "room:k", 2).await;
    assert_eq!(users(&left), BTreeSet::from(["bob".into(), "carol".into()]));
    let presence = ask(&mut ann, "presence", "room:k").await;
    let clients = presence["clients"].as_object().unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients.values().next().unwrap()["user"], "ann");
    drop(on_b);
}

async fn a_graceful_shutdown_removes_its_entries_at_once(redis: TestRedis) {
    let config = Config::new("shutdown");
    let prefix = format!("presence-shutdown-{}:", std::process::id());
    let a = Cometd::server("a", &redis.args(), &prefix, &config.args());
    let mut b = Cometd::server("b", &redis.args(), &prefix, &config.args());
    let mut ann = client(&a, Some("ann")).await;
    ann.send(r#"subscribe room:s {"joinLeave":true}"#).await;
    ann.expect("subscribed", WITHIN, |f| f == "subscribed room:s")
        .await;
    let mut bob = client(&b, Some("bob")).await;
    bob.subscribe("room:s").await;
    events(&mut ann, "join", "room:s", 1).await;
    b.terminate();
    assert!(b.wait_exit(WITHIN).is_some(), "b exits");
    // Gone from Redis by the time the process exited: no wait for the ttl.
    let stats = ask(&mut ann, "presence_stats", "room:s").await;
    assert_eq!(stats["clients"], 1, "{stats}");
    events(&mut ann, "leave", "room:s", 1).await;
}

async fn a_redis_restart_loses_no_live_entry(mut redis: TestRedis) {
    let config = Config::new("restart");
    let prefix = format!("presence-restart-{}:", std::process::id());
    let a = Cometd::server("a", &redis.args(), &prefix, &config.args());
    let b = Cometd::server("b", &redis.args(), &prefix, &config.args());
    let mut ann = client(&a, Some("ann")).await;
    ann.send(r#"subscribe room:r {"joinLeave":true}"#).await;
    ann.expect("subscribed", WITHIN, |f| f == "subscribed room:r")
        .await;
    let mut bob = client(&b, Some("bob")).await;
    bob.subscribe("room:r").await;
    // Written (each process writes its entries within join_leave_window_ms).
    events(&mut ann, "join", "room:r", 1).await;
    let stats = ask(&mut ann, "presence_stats", "room:r").await;
    assert_eq!(stats["clients"], 2);
    redis.restart();
    // Everything was lost; the processes write their entries again at their next renewal.
    eventually("both entries are back", || async {
        let key = redis.names(&prefix).presence("room:r").entries;
        let entries: usize = redis
            .query_key::<Option<usize>>(&key, redis::cmd("HLEN").arg(&key))
            .unwrap_or(0);
        entries == 2
    })
    .await;
    let presence = ask(&mut ann, "presence", "room:r").await;
    let users: BTreeSet<&str> = presence["clients"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, BTreeSet::from(["ann", "bob"]));
    let stats = ask(&mut bob, "presence_stats", "room:r").await;
    assert_eq!(
        (stats["clients"].clone(), stats["users"].clone()),
        (json!(2), json!(2))
    );
}

redis_tests!(
    entries_follow_members_on_either_process_two_tabs_are_one_user,
    a_killed_processs_members_leave_within_the_presence_ttl,
    a_graceful_shutdown_removes_its_entries_at_once,
    a_redis_restart_loses_no_live_entry,
);
