//! Comet's Socket.IO transport against a real server: Engine.IO over WebSocket and
//! long-polling, the upgrade from one to the other, heartbeats, and comet's model in
//! Socket.IO packets beside a raw WebSocket client in the same channel. (The stock
//! `socket.io-client` and the official suites run in `tests/socketio-node` and
//! `tests/socketio-protocol`.)

mod common;

use std::time::Duration;

use comet::Comet;
use common::{eventually, Ended, TestServer, WsClient};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn sio_ws_url(server: &TestServer, sid: Option<&str>) -> String {
    let sid = sid.map(|sid| format!("&sid={sid}")).unwrap_or_default();
    format!(
        "ws://{}/comet/socket.io/?EIO=4&transport=websocket{sid}",
        server.addr
    )
}

fn polling_url(server: &TestServer, sid: Option<&str>) -> String {
    let sid = sid.map(|sid| format!("&sid={sid}")).unwrap_or_default();
    format!(
        "http://{}/comet/socket.io/?EIO=4&transport=polling{sid}",
        server.addr
    )
}

/// The JSON of an open packet.
fn open_packet(packet: &str) -> Value {
    assert!(packet.starts_with('0'), "an open packet: {packet}");
    serde_json::from_str(&packet[1..]).expect("JSON handshake")
}

/// A Socket.IO client on a WebSocket, connected to the main namespace.
async fn connected(server: &TestServer) -> WsClient {
    let mut client = WsClient::connect(&sio_ws_url(server, None)).await;
    client.recv().await; // the open packet
    client.send("40").await;
    let answer = client.recv().await;
    assert!(
        answer.starts_with("40{\"sid\":\""),
        "CONNECT answer: {answer}"
    );
    client
}

async fn get(url: &str) -> (u16, String) {
    let mut res = awc::Client::new()
        .get(url)
        .timeout(common::PATIENCE)
        .send()
        .await
        .expect("GET answered");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn post(url: &str, body: &str) -> (u16, String) {
    let mut res = awc::Client::new()
        .post(url)
        .timeout(common::PATIENCE)
        .send_body(body.to_owned())
        .await
        .expect("POST answered");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn a_websocket_session_speaks_comet_in_socketio_packets() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = WsClient::connect(&sio_ws_url(&server, None)).await;
    let open = open_packet(&client.recv().await);
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 35_000);
    assert_eq!(open["maxPayload"], 1_048_576);
    client.send("40/admin,").await;
    assert_eq!(
        client.recv().await,
        "44/admin,{\"message\":\"Invalid namespace\"}"
    );
    client.send("40").await;
    assert!(client.recv().await.starts_with("40{\"sid\":"));

    let mut raw = server.client().await;
    raw.subscribe("news").await;
    client.send("420[\"subscribe\",\"news\"]").await;
    assert_eq!(client.recv().await, "430[{\"channel\":\"news\"}]");

    client.send("42[\"channel\",\"news\",{\"a\":1}]").await;
    assert_eq!(client.recv().await, "42[\"channel\",\"news\",{\"a\":1}]");
    assert_eq!(raw.recv_on("news").await, "{\"a\":1}");
    raw.send("channel news from raw").await;
    assert_eq!(client.recv().await, "42[\"channel\",\"news\",\"from raw\"]");
    assert_eq!(raw.recv_on("news").await, "from raw");

    client.send("421[\"action\",\"site/test\",{\"x\":1}]").await;
    assert_eq!(client.recv().await, "431[{\"echo\":{\"x\":1}}]");
    client.send("422[\"action\",\"no/such\"]").await;
    let missing = client.recv().await;
    assert!(
        missing.starts_with("432[{\"error\":{\"code\":\"not_found\""),
        "{missing}"
    );

    client
        .send("451-3[\"channel\",\"news\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    client.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let refused = client.recv().await;
    assert!(
        refused.starts_with("433[{\"error\":{\"code\":\"bad_frame\""),
        "{refused}"
    );
    client.send("42[\"nope\"]").await;
    let unknown = client.recv().await;
    assert!(
        unknown.starts_with("42[\"comet:error\",{\"code\":\"bad_frame\""),
        "{unknown}"
    );

    client.send("424[\"unsubscribe\",\"news\"]").await;
    assert_eq!(client.recv().await, "434[{\"channel\":\"news\"}]");
    client.send("41").await;
    assert!(matches!(client.until_closed().await, Ended::Closed(_)));
    server.stop().await;
}

#[actix_web::test]
async fn a_packet_before_connect_or_a_broken_one_closes_the_session() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = WsClient::connect(&sio_ws_url(&server, None)).await;
    client.recv().await;
    client.send("42[\"channel\",\"x\",1]").await;
    assert!(matches!(client.until_closed().await, Ended::Closed(_)));
    let mut client = connected(&server).await;
    client.send("42{}").await;
    assert!(matches!(client.until_closed().await, Ended::Closed(_)));
    server.stop().await;
}

#[actix_web::test]
async fn a_server_side_disconnect_is_a_disconnect_packet() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = connected(&server).await;
    let node = server.comet.node().clone();
    let listed = || {
        let node = node.clone();
        async move {
            node.connections()
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|info| info.transport == "socketio-websocket")
                .map(|info| info.id)
        }
    };
    eventually("the connection is listed", || {
        let found = listed();
        async move { found.await.is_some() }
    })
    .await;
    let id = listed().await.expect("listed");
    node.disconnect(&id).await.expect("disconnected");
    assert_eq!(
        client.recv().await,
        "42[\"comet:close\",{\"code\":1000,\"reason\":\"Normal closure\"}]"
    );
    assert_eq!(client.recv().await, "41");
    assert!(matches!(
        client.until_closed().await,
        Ended::Closed(Some(1000))
    ));
    server.stop().await;
}

#[actix_web::test]
async fn a_silent_websocket_session_is_closed_after_ping_interval_plus_timeout() {
    let builder =
        Comet::builder().heartbeat(Duration::from_millis(100), Duration::from_millis(1300));
    let server = TestServer::start(builder).await;
    let mut client = WsClient::connect(&sio_ws_url(&server, None)).await;
    let open = open_packet(&client.recv().await);
    assert_eq!(open["pingInterval"], 100);
    assert_eq!(open["pingTimeout"], 1200);
    client.send("40").await;
    client.recv().await;
    // Pongs keep it open past the limit...
    for _ in 0..15 {
        assert_eq!(client.recv().await, "2");
        client.send("3").await;
    }
    // ...silence ends it, as a heartbeat timeout.
    let ended = client.until_closed().await;
    assert_eq!(ended, Ended::Closed(Some(4000)));
    server.stop().await;
}

#[actix_web::test]
async fn long_polling_then_the_upgrade_to_websocket() {
    let server = TestServer::start(Comet::builder()).await;
    let (status, body) = get(&polling_url(&server, None)).await;
    assert_eq!(status, 200);
    let open = open_packet(&body);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    let sid = open["sid"].as_str().expect("sid").to_owned();
    let url = polling_url(&server, Some(&sid));

    assert_eq!(
        post(&url, "40\x1e420[\"subscribe\",\"poll\"]").await,
        (200, "ok".into())
    );
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    let packets: Vec<&str> = body.split('\x1e').collect();
    assert!(packets[0].starts_with("40{\"sid\":"), "{body}");
    assert_eq!(packets[1], "430[{\"channel\":\"poll\"}]");

    post(&url, "42[\"channel\",\"poll\",\"one\"]").await;
    assert_eq!(
        get(&url).await,
        (200, "42[\"channel\",\"poll\",\"one\"]".into())
    );

    // A poll waits; the probe answers it with a noop; `5` completes the upgrade.
    let waiting = actix_web::rt::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    let mut socket = WsClient::connect(&sio_ws_url(&server, Some(&sid))).await;
    socket.send("2probe").await;
    assert_eq!(socket.recv().await, "3probe");
    assert_eq!(waiting.await.expect("poll"), (200, "6".into()));
    socket.send("5").await;
    socket.send("42[\"channel\",\"poll\",\"two\"]").await;
    assert_eq!(socket.recv().await, "42[\"channel\",\"poll\",\"two\"]");
    let mut raw = server.client().await;
    raw.subscribe("poll").await;
    raw.send("channel poll three").await;
    assert_eq!(socket.recv().await, "42[\"channel\",\"poll\",\"three\"]");

    // The session is the socket's now: polls are refused, a second socket closed.
    assert_eq!(get(&url).await.0, 400);
    let mut second = WsClient::connect(&sio_ws_url(&server, Some(&sid))).await;
    assert!(matches!(second.until_closed().await, Ended::Closed(_)));
    socket.send("1").await;
    assert!(matches!(socket.until_closed().await, Ended::Closed(_)));
    eventually("the session is gone", || {
        let count = server.comet.socketio().session_count();
        async move { count == 0 }
    })
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn bad_requests_get_400() {
    let server = TestServer::start(Comet::builder()).await;
    let base = format!("http://{}/comet/socket.io/", server.addr);
    assert_eq!(get(&format!("{base}?transport=polling")).await.0, 400);
    assert_eq!(get(&format!("{base}?EIO=3&transport=polling")).await.0, 400);
    assert_eq!(
        get(&format!("{base}?EIO=4&transport=carrier-pigeon"))
            .await
            .0,
        400
    );
    assert_eq!(
        get(&format!("{base}?EIO=4&transport=polling&sid=nope"))
            .await
            .0,
        400
    );
    assert_eq!(
        post(&format!("{base}?EIO=4&transport=polling"), "40")
            .await
            .0,
        400
    );
    let (_, body) = get(&polling_url(&server, None)).await;
    let sid = open_packet(&body)["sid"].as_str().expect("sid").to_owned();
    let url = polling_url(&server, Some(&sid));
    assert_eq!(post(&url, "zzz").await.0, 400);
    assert_eq!(get(&url).await.0, 400, "a broken body closes the session");
    server.stop().await;
}

#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/test_redis.rs"]
mod test_redis;

/// Two comet processes (nodes) on a Redis of the test's own: a Socket.IO client on one
/// and a raw WebSocket client on the other, in one channel, see each other's messages.
async fn socketio_and_raw_clients_meet_across_processes_through_redis(
    redis: test_redis::TestRedis,
) {
    let a = TestServer::start(redis.on(Comet::builder())).await;
    let b = TestServer::start(redis.on(Comet::builder())).await;
    let mut sio = connected(&a).await;
    let mut raw = b.client().await;
    sio.send("421[\"subscribe\",\"across\"]").await;
    assert_eq!(sio.recv().await, "431[{\"channel\":\"across\"}]");
    raw.subscribe("across").await;

    sio.send("42[\"channel\",\"across\",{\"from\":\"socket.io\"}]")
        .await;
    assert_eq!(raw.recv_on("across").await, "{\"from\":\"socket.io\"}");
    assert_eq!(
        sio.recv().await,
        "42[\"channel\",\"across\",{\"from\":\"socket.io\"}]"
    );
    raw.send("channel across from raw").await;
    assert_eq!(sio.recv().await, "42[\"channel\",\"across\",\"from raw\"]");
    a.stop().await;
    b.stop().await;
}

#[actix_web::test]
async fn the_socketio_auth_option_carries_the_token_and_a_refusal_is_a_connect_error() {
    use comet::auth::{unix_now, Claims, TokenSigner, TokenVerifier};
    const SECRET: &[u8] = b"socket.io test secret, 32 bytes+";
    let token = |user: &str| {
        TokenSigner::hmac(SECRET)
            .unwrap()
            .sign(&Claims {
                sub: Some(user.into()),
                exp: Some(unix_now() + 600),
                ..Claims::default()
            })
            .unwrap()
    };
    let builder = Comet::builder()
        .tokens(TokenVerifier::hmac(SECRET).unwrap())
        .anonymous(false);
    let server = TestServer::start(builder).await;

    // `io(url, { auth: { token } })`: the CONNECT packet carries it; the connection is
    // answered once the server has authenticated it, and handlers see the user.
    let mut alice = WsClient::connect(&sio_ws_url(&server, None)).await;
    alice.recv().await; // the open packet
    alice
        .send(&format!("40{{\"token\":\"{}\"}}", token("alice")))
        .await;
    let connected = alice.recv().await;
    assert!(connected.starts_with("40{\"sid\":\""), "{connected}");
    alice.send("421[\"action\",\"test/whoami\",{}]").await;
    let me = alice.recv().await;
    assert!(me.starts_with("431[{"), "{me}");
    eventually("alice listed", || async {
        let listed = server.comet.node().connections().await.unwrap();
        listed.iter().any(|info| info.user() == Some("alice"))
    })
    .await;

    // A forged token: CONNECT_ERROR with the refusal's code (`connect_error`, `err.data.code`),
    // then the session ends.
    let mut forged = WsClient::connect(&sio_ws_url(&server, None)).await;
    forged.recv().await;
    forged.send("40{\"token\":\"e30.e30.x\"}").await;
    let refused = loop {
        let packet = forged.recv().await;
        if packet.starts_with("44") {
            break packet;
        }
    };
    assert!(refused.contains("\"code\":\"unauthorized\""), "{refused}");
    assert!(matches!(
        forged.until_closed().await,
        Ended::Closed(_) | Ended::Dropped
    ));
    server.stop().await;
}

#[actix_web::test]
async fn a_subscription_with_recover_gets_its_position_and_offsets_over_socketio() {
    use comet::auth::Namespace;
    let builder = Comet::builder().namespace(
        "feed",
        Namespace::new()
            .history(10, Duration::from_secs(60))
            .recover(true),
    );
    let server = TestServer::start(builder).await;
    let mut client = connected(&server).await;
    client
        .send("421[\"subscribe\",\"feed:x\",{\"recover\":true}]")
        .await;
    let ack = client.recv().await;
    let body: Value = serde_json::from_str(ack.strip_prefix("431").expect("the ack")).unwrap();
    assert_eq!(body[0]["channel"], "feed:x");
    assert_eq!(body[0]["offset"], 0);
    assert!(body[0]["epoch"].as_str().is_some(), "{ack}");
    server
        .comet
        .node()
        .publish("feed:x", serde_json::json!({ "n": 1 }))
        .await
        .unwrap();
    assert_eq!(
        client.recv().await,
        "42[\"channel\",\"feed:x\",{\"n\":1},1]"
    );
    server.stop().await;
}

redis_tests!(actix: socketio_and_raw_clients_meet_across_processes_through_redis);
