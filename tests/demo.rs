//! The demo actions of `comet::demo` (what `cometd --demo` and the chat serve), over a real
//! WebSocket: `site/whoami` says who the server takes the caller for.

mod common;

use comet::auth::{Claims, Namespace, PublishRule, TokenSigner, TokenVerifier};
use comet::{demo, Comet};
use common::TestServer;
use serde_json::{json, Value};

const SECRET: &[u8] = b"the demo test's secret, 32 bytes or more";

/// A comet with the demo actions and HS256 tokens, anonymous connections allowed; in
/// namespace `room` only the server publishes, `feed` is for users, with user channels.
async fn demo_server() -> TestServer {
    let builder = Comet::builder()
        .tokens(TokenVerifier::hmac(SECRET).expect("a good secret"))
        .namespace("room", Namespace::new().publish(PublishRule::Server))
        .namespace(
            "feed",
            Namespace::new()
                .publish(PublishRule::Authenticated)
                .max_payload_bytes(16),
        );
    TestServer::start(demo::register(builder)).await
}

fn token_for(user: &str) -> String {
    TokenSigner::hmac(SECRET)
        .expect("a good secret")
        .sign(&Claims {
            sub: Some(user.to_owned()),
            exp: Some(comet::auth::unix_now() + 3600),
            ..Claims::default()
        })
        .expect("signed")
}

#[actix_web::test]
async fn whoami_answers_the_token_user_and_the_connection_id() {
    let server = demo_server().await;
    let mut alice = server.client().await;
    alice.send(&format!("auth {}", token_for("alice"))).await;
    let frame = alice.recv().await;
    let body = frame
        .strip_prefix("authenticated ")
        .unwrap_or_else(|| panic!("expected `authenticated`, got: {frame}"));
    let authenticated: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(authenticated["user"], "alice");

    let answer = alice.request("site/whoami", json!({})).await;
    assert_eq!(answer["user"], "alice");
    assert_eq!(answer["connection"], authenticated["connection"]);
    let connections = server.comet.connections().await.expect("connections");
    assert_eq!(connections.len(), 1);
    assert_eq!(answer["connection"], connections[0].id.as_str());
    assert_eq!(answer["requestUid"], "u1");
    server.stop().await;
}

#[actix_web::test]
async fn whoami_answers_null_for_an_anonymous_caller() {
    let server = demo_server().await;
    let mut alice = server.client().await;
    alice.send(&format!("auth {}", token_for("alice"))).await;
    assert!(alice.recv().await.starts_with("authenticated "));
    let mut anonymous = server.client().await;
    let answer = anonymous.request("site/whoami", json!({})).await;
    assert_eq!(answer["user"], Value::Null);
    let connection = answer["connection"].as_str().expect("a connection id");
    // Its own connection, not alice's.
    let mine = alice.request("site/whoami", json!({})).await;
    assert_ne!(mine["connection"].as_str(), Some(connection));
    let ids: Vec<String> = server
        .comet
        .connections()
        .await
        .expect("connections")
        .into_iter()
        .map(|info| info.id.to_string())
        .collect();
    assert!(
        ids.iter().any(|id| id == connection),
        "{connection} in {ids:?}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn site_publish_publishes_only_where_the_caller_could_itself() {
    let server = demo_server().await;
    let mut alice = server.client().await;
    alice.send(&format!("auth {}", token_for("alice"))).await;
    assert!(alice.recv().await.starts_with("authenticated "));
    let mut anonymous = server.client().await;
    let publish = |channel: &str| json!({ "channel": channel, "message": "hi" });

    // Where clients may not publish, neither may the demo action for them.
    let answer = alice.request("site/publish", publish("room:lobby")).await;
    assert_eq!(answer["error"]["code"], "forbidden", "{answer:?}");
    let answer = anonymous
        .request("site/publish", publish("feed:news"))
        .await;
    assert_eq!(answer["error"]["code"], "not_authenticated", "{answer:?}");
    let answer = alice
        .request("site/publish", publish("feed:news#bob"))
        .await;
    assert_eq!(answer["error"]["code"], "forbidden", "{answer:?}");
    let long = json!({ "channel": "feed:news", "message": "x".repeat(17) });
    let answer = alice.request("site/publish", long).await;
    assert_eq!(answer["error"]["code"], "too_large", "{answer:?}");
    let notify = json!({ "ms": 0, "notify": "room:lobby" });
    let answer = alice.request("site/sleep", notify).await;
    assert_eq!(answer["error"]["code"], "forbidden", "{answer:?}");

    // Where it may, it does.
    alice.subscribe("feed:news#alice").await;
    alice.call("site/publish", publish("feed:news#alice")).await;
    published_and_heard(&mut alice, "feed:news#alice").await;
    anonymous.subscribe("open").await;
    anonymous.call("site/publish", publish("open")).await;
    published_and_heard(&mut anonymous, "open").await;
    server.stop().await;
}

/// Reads the answer of a `site/publish` to `channel` and the message it published, in
/// whichever order they come.
async fn published_and_heard(client: &mut common::WsClient, channel: &str) {
    let frames = [client.recv().await, client.recv().await];
    let heard = format!("channel {channel} hi");
    assert!(frames.contains(&heard), "{frames:?}");
    let answer = frames
        .iter()
        .find(|frame| **frame != heard)
        .expect("an answer");
    assert!(
        answer.starts_with("action ") && answer.contains(r#""published":true"#),
        "{answer}"
    );
}
