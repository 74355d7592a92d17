//! The HTTP server API (`POST /comet/api/<method>`) of a two-process cluster of real
//! `cometd`s on a Redis of the test's own, through a real HTTP client (awc) and real
//! WebSocket clients: each method, its errors, the key.

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

use std::time::Duration;

use comet::auth::{unix_now, Claims, TokenSigner};
use eventually::eventually;
use process::{Client, Cometd};
use serde_json::{json, Value};
use test_redis::TestRedis;

const KEY: &str = "test api key";
const SECRET: &str = "http api test secret: 32 bytes or more";
const LONG: Duration = Duration::from_secs(15);

/// Two servers on one Redis, the API on, user tokens, `feed:*` with history, `room:*`
/// with presence.
struct Cluster {
    a: Cometd,
    b: Cometd,
    _redis: TestRedis,
}

impl Cluster {
    fn start(redis: TestRedis, prefix: &str) -> Cluster {
        let config = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("http-api-{}.toml", prefix.trim_end_matches(':')));
        std::fs::write(
            &config,
            "[namespaces.feed]\nhistory_size = 10\n[namespaces.room]\npresence = true\n",
        )
        .unwrap();
        let config = config.to_str().unwrap().to_owned();
        let flags = [
            "--api-key",
            KEY,
            "--token-hmac-secret",
            SECRET,
            "--process-heartbeat-ms",
            "200",
            "--config",
            &config,
        ];
        let a = Cometd::server("api-a", &redis.args(), prefix, &flags);
        let b = Cometd::server("api-b", &redis.args(), prefix, &flags);
        Cluster {
            a,
            b,
            _redis: redis,
        }
    }
}

/// `POST /comet/api/<method>` with `body` and `Authorization: apikey <key>` (none for
/// `None`): status and JSON answer.
async fn call_with(server: &Cometd, key: Option<&str>, method: &str, body: &str) -> (u16, Value) {
    let addr = server.addr.as_deref().expect("a server");
    let mut request = awc::Client::new()
        .post(format!("http://{addr}/comet/api/{method}"))
        .insert_header(("content-type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("authorization", format!("apikey {key}")));
    }
    let mut response = request
        .send_body(body.to_owned())
        .await
        .unwrap_or_else(|err| panic!("POST {method}: {err}"));
    let bytes = response.body().limit(4 << 20).await.expect("a body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|err| panic!("{method} answered no JSON ({err}): {bytes:?}"))
    };
    (response.status().as_u16(), value)
}

async fn call(server: &Cometd, method: &str, body: Value) -> Value {
    let (status, answer) = call_with(server, Some(KEY), method, &body.to_string()).await;
    assert_eq!(status, 200, "{method} {body}: {answer}");
    answer
}

/// The `{"code","message"}` of an error answer, checking its status.
async fn refused(server: &Cometd, method: &str, body: &str, status: u16) -> String {
    let (got, answer) = call_with(server, Some(KEY), method, body).await;
    assert_eq!(got, status, "{method} {body}: {answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    answer["error"]["code"].as_str().expect("a code").to_owned()
}

fn token(user: &str) -> String {
    TokenSigner::hmac(SECRET.as_bytes())
        .unwrap()
        .sign(&Claims {
            sub: Some(user.into()),
            exp: Some(unix_now() + 600),
            ..Claims::default()
        })
        .unwrap()
}

/// A client of `user` on `server`.
async fn user(server: &Cometd, user: &str) -> Client {
    Client::connect(&format!("{}?token={}", server.ws_url(), token(user))).await
}

/// The connection id of `client` (`site/whoami`).
async fn whoami(client: &mut Client) -> String {
    let answer = client.call_and_wait("site/whoami", json!({}), LONG).await;
    answer["connection"]
        .as_str()
        .expect("a connection id")
        .to_owned()
}

async fn the_key_guards_the_api_and_no_key_means_no_api(redis: TestRedis) {
    let without = Cometd::server("api-off", &redis.args(), "apioff:", &[]);
    let (status, _) = call_with(&without, Some(KEY), "info", "{}").await;
    assert_eq!(status, 404, "no key configured: no API");

    let with = Cometd::server("api-on", &redis.args(), "apion:", &["--api-key", KEY]);
    let (status, answer) = call_with(&with, None, "info", "{}").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, answer) = call_with(&with, Some("not the key"), "info", "{}").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, _) = call_with(&with, Some(KEY), "info", "").await;
    assert_eq!(status, 200, "an empty body is {{}}");
}

async fn publish_and_broadcast_reach_clients_on_every_process(redis: TestRedis) {
    let cluster = Cluster::start(redis, "apipub:");
    let mut on_a = cluster.a.connect().await;
    let mut on_b = cluster.b.connect().await;
    on_a.subscribe("news").await;
    on_b.subscribe("news").await;
    on_b.subscribe("sport").await;

    // A JSON string goes out as its text; other JSON as its JSON text.
    assert_eq!(
        call(
            &cluster.a,
            "publish",
            json!({"channel": "news", "data": "plain text"})
        )
        .await,
        json!({})
    );
    assert!(on_a.receives("news", "plain text", LONG).await);
    assert!(on_b.receives("news", "plain text", LONG).await);
    call(
        &cluster.a,
        "publish",
        json!({"channel": "news", "data": {"n": 1}}),
    )
    .await;
    assert!(on_b.receives("news", r#"{"n":1}"#, LONG).await);

    call(
        &cluster.b,
        "broadcast",
        json!({"channels": ["news", "sport"], "data": [1, 2]}),
    )
    .await;
    assert!(on_a.receives("news", "[1,2]", LONG).await);
    assert!(on_b.receives("news", "[1,2]", LONG).await);
    assert!(on_b.receives("sport", "[1,2]", LONG).await);

    // Refusals, each with its wire code.
    let a = &cluster.a;
    assert_eq!(refused(a, "publish", "{not json", 400).await, "bad_json");
    assert_eq!(refused(a, "publish", "[1]", 400).await, "bad_json");
    assert_eq!(
        refused(a, "publish", r#"{"data":1}"#, 400).await,
        "bad_frame"
    );
    assert_eq!(
        refused(a, "publish", r#"{"channel":"x"}"#, 400).await,
        "bad_frame"
    );
    assert_eq!(
        refused(a, "publish", r#"{"channel":"","data":1}"#, 400).await,
        "bad_channel"
    );
    assert_eq!(
        refused(
            a,
            "broadcast",
            r#"{"channels":["ok","bad\nname"],"data":1}"#,
            400
        )
        .await,
        "bad_channel"
    );
    assert_eq!(
        refused(a, "broadcast", r#"{"channels":[],"data":1}"#, 400).await,
        "bad_frame"
    );
    assert_eq!(refused(a, "no_such", "{}", 404).await, "not_found");
    let huge = json!({"channel": "news", "data": "x".repeat(200_000)}).to_string();
    assert_eq!(refused(a, "publish", &huge, 413).await, "too_large");
    // Nothing of the refused calls went out: the next message is the marker.
    call(a, "publish", json!({"channel": "news", "data": "marker"})).await;
    let next = on_b
        .expect("the marker", LONG, |f| f.starts_with("channel news "))
        .await;
    assert_eq!(next, "channel news marker");
}

async fn subscribe_unsubscribe_and_disconnect_act_wherever_the_connections_are(redis: TestRedis) {
    let cluster = Cluster::start(redis, "apiuser:");
    let mut alice_a = user(&cluster.a, "alice").await;
    let mut alice_b = user(&cluster.b, "alice").await;
    let mut bob_b = user(&cluster.b, "bob").await;
    // Both of alice's connections are known as hers where they are (an answer comes only
    // once a connection is registered): a user message that came before would miss one.
    for client in [&mut alice_a, &mut alice_b] {
        whoami(client).await;
    }

    // subscribe {user, channel}: both of alice's connections, on both processes.
    call(
        &cluster.a,
        "subscribe",
        json!({"user": "alice", "channel": "inbox"}),
    )
    .await;
    for client in [&mut alice_a, &mut alice_b] {
        client
            .expect("subscribed inbox", LONG, |f| f == "subscribed inbox")
            .await;
    }
    call(
        &cluster.a,
        "publish",
        json!({"channel": "inbox", "data": "hi"}),
    )
    .await;
    assert!(alice_a.receives("inbox", "hi", LONG).await);
    assert!(alice_b.receives("inbox", "hi", LONG).await);

    call(
        &cluster.b,
        "unsubscribe",
        json!({"user": "alice", "channel": "inbox"}),
    )
    .await;
    for client in [&mut alice_a, &mut alice_b] {
        client
            .expect("unsubscribed inbox", LONG, |f| f == "unsubscribed inbox")
            .await;
    }

    // subscribe {connection, channel}: the one connection, on the other process.
    let bob_id = whoami(&mut bob_b).await;
    call(
        &cluster.a,
        "subscribe",
        json!({"connection": bob_id, "channel": "inbox"}),
    )
    .await;
    bob_b
        .expect("subscribed inbox", LONG, |f| f == "subscribed inbox")
        .await;

    let a = &cluster.a;
    assert_eq!(
        refused(a, "subscribe", r#"{"channel":"x"}"#, 400).await,
        "bad_frame"
    );
    assert_eq!(
        refused(
            a,
            "subscribe",
            r#"{"user":"a","connection":"p.1","channel":"x"}"#,
            400
        )
        .await,
        "bad_frame"
    );
    assert_eq!(
        refused(a, "disconnect", r#"{"connection":"no dot"}"#, 400).await,
        "bad_frame"
    );
    assert_eq!(
        refused(a, "subscribe", r#"{"user":"a","channel":""}"#, 400).await,
        "bad_channel"
    );

    // disconnect {connection}: bob's, on B, asked of A.
    call(&cluster.a, "disconnect", json!({"connection": bob_id})).await;
    assert_eq!(bob_b.close_code(LONG).await, Some(1000));
    // disconnect {user}: alice everywhere.
    call(&cluster.b, "disconnect", json!({"user": "alice"})).await;
    assert_eq!(alice_a.close_code(LONG).await, Some(1000));
    assert_eq!(alice_b.close_code(LONG).await, Some(1000));
}

async fn history_reads_what_was_published_and_says_when_there_is_none(redis: TestRedis) {
    let cluster = Cluster::start(redis, "apihist:");
    for n in 1..=3 {
        call(
            &cluster.a,
            "publish",
            json!({"channel": "feed:a", "data": {"n": n}}),
        )
        .await;
    }
    let page = call(
        &cluster.b,
        "history",
        json!({"channel": "feed:a", "limit": 2}),
    )
    .await;
    assert_eq!(page["offset"], 3, "{page}");
    assert!(
        page["epoch"].as_str().is_some_and(|e| !e.is_empty()),
        "{page}"
    );
    assert_eq!(
        page["publications"],
        json!([{"offset": 2, "payload": "{\"n\":2}"}, {"offset": 3, "payload": "{\"n\":3}"}])
    );
    let since = call(
        &cluster.b,
        "history",
        json!({"channel": "feed:a", "since": 2}),
    )
    .await;
    assert_eq!(
        since["publications"].as_array().map(Vec::len),
        Some(1),
        "{since}"
    );

    let (status, answer) =
        call_with(&cluster.a, Some(KEY), "history", r#"{"channel":"plain"}"#).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "not_found");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no history"),
        "{answer}"
    );
    assert_eq!(
        refused(
            &cluster.a,
            "history",
            r#"{"channel":"feed:a","limit":-1}"#,
            400
        )
        .await,
        "bad_frame"
    );
}

async fn channels_and_info_see_the_whole_cluster_and_a_killed_process_drops_out(redis: TestRedis) {
    let mut cluster = Cluster::start(redis, "apiinfo:");
    let mut clients = Vec::new();
    for (server, channel) in [
        (&cluster.a, "room:1"),
        (&cluster.a, "room:1"),
        (&cluster.b, "room:1"),
        (&cluster.b, "lobby"),
    ] {
        let mut client = server.connect().await;
        client.subscribe(channel).await;
        clients.push(client);
    }
    // A process waits for the processes it knows of: once each has heard the other.
    for server in [&cluster.a, &cluster.b] {
        eventually("each process knows the other", || async move {
            let info = call(server, "info", json!({})).await;
            info["processes"].as_array().map(Vec::len) == Some(2)
        })
        .await;
    }
    let all = call(&cluster.a, "channels", json!({})).await;
    assert_eq!(
        all,
        json!({"channels": {"room:1": {"subscribers": 3}, "lobby": {"subscribers": 1}}})
    );
    let rooms = call(&cluster.b, "channels", json!({"pattern": "room:*"})).await;
    assert_eq!(rooms, json!({"channels": {"room:1": {"subscribers": 3}}}));

    // info: both processes, with what each holds (B's as its last heartbeat said).
    let (a_id, b_id) = (cluster.a.node.clone(), cluster.b.node.clone());
    eventually("info lists both processes with their counts", || {
        let a = &cluster.a;
        let (a_id, b_id) = (a_id.clone(), b_id.clone());
        async move {
            let info = call(a, "info", json!({})).await;
            let processes = info["processes"].as_array().cloned().unwrap_or_default();
            let find = |id: &str| processes.iter().find(|p| p["id"] == id).cloned();
            match (find(&a_id), find(&b_id)) {
                (Some(pa), Some(pb)) => {
                    processes.len() == 2
                        && pa["connections"] == 2
                        && pa["subscriptions"] == 2
                        && pb["connections"] == 2
                        && pb["subscriptions"] == 2
                        && pa["role"] == "server"
                        && pa["version"] == env!("CARGO_PKG_VERSION")
                        && pa["uptime_s"].is_u64()
                }
                _ => false,
            }
        }
    })
    .await;

    cluster.b.kill9();
    eventually("the killed process drops out of info", || {
        let a = &cluster.a;
        async move {
            let info = call(a, "info", json!({})).await;
            info["processes"].as_array().map(Vec::len) == Some(1)
        }
    })
    .await;
    // channels answers without waiting for the dead one.
    let all = call(&cluster.a, "channels", json!({})).await;
    assert_eq!(all, json!({"channels": {"room:1": {"subscribers": 2}}}));
}

async fn presence_lists_the_subscribers_of_every_process(redis: TestRedis) {
    let cluster = Cluster::start(redis, "apipres:");
    let mut alice = user(&cluster.a, "alice").await;
    let mut bob = user(&cluster.b, "bob").await;
    alice.subscribe("room:x").await;
    bob.subscribe("room:x").await;
    let (alice_id, bob_id) = (whoami(&mut alice).await, whoami(&mut bob).await);

    // An entry is written just after its `subscribed`: both are there soon.
    eventually("both entries are in presence", || {
        let a = &cluster.a;
        async move {
            let presence = call(a, "presence", json!({"channel": "room:x"})).await;
            presence["clients"].as_object().map(|c| c.len()) == Some(2)
        }
    })
    .await;
    let presence = call(&cluster.a, "presence", json!({"channel": "room:x"})).await;
    let clients = presence["clients"].as_object().expect("clients");
    assert_eq!(clients.len(), 2, "{presence}");
    assert_eq!(clients[&alice_id]["user"], "alice", "{presence}");
    assert_eq!(clients[&bob_id]["user"], "bob", "{presence}");
    assert_eq!(
        call(&cluster.b, "presence_stats", json!({"channel": "room:x"})).await,
        json!({"clients": 2, "users": 2})
    );

    let (status, answer) =
        call_with(&cluster.a, Some(KEY), "presence", r#"{"channel":"plain"}"#).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (404, &json!("not_found"))
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no presence"),
        "{answer}"
    );
    assert_eq!(
        refused(&cluster.a, "presence_stats", r#"{"channel":""}"#, 400).await,
        "bad_channel"
    );
}

redis_tests!(
    actix:
    the_key_guards_the_api_and_no_key_means_no_api,
    publish_and_broadcast_reach_clients_on_every_process,
    subscribe_unsubscribe_and_disconnect_act_wherever_the_connections_are,
    history_reads_what_was_published_and_says_when_there_is_none,
    channels_and_info_see_the_whole_cluster_and_a_killed_process_drops_out,
    presence_lists_the_subscribers_of_every_process,
);
