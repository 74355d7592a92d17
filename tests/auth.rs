//! Identity and permissions through real transports: a real server on a free port, real
//! WebSocket (raw and SockJS) and SockJS HTTP clients, and two processes on a
//! test-started Redis. The rules themselves are tested at actor level
//! (actors/tests/auth.rs); here: that every transport carries them the same way.

mod common;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/test_redis.rs"]
mod test_redis;

use comet::auth::{
    unix_now, Claims, Namespace, PublishRule, SubscribeRule, TokenSigner, TokenVerifier,
};
use comet::{Comet, CometBuilder};
use common::{code, eventually, Ended, TestServer, WsClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use test_redis::TestRedis;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"integration test secret: 32 bytes+";

fn token(user: &str) -> String {
    TokenSigner::hmac(SECRET)
        .unwrap()
        .sign(&Claims {
            sub: Some(user.into()),
            exp: Some(unix_now() + 600),
            ..Claims::default()
        })
        .unwrap()
}

fn secured() -> CometBuilder {
    Comet::builder()
        .tokens(TokenVerifier::hmac(SECRET).unwrap())
        .anonymous(false)
        .namespace(
            "chat",
            Namespace::new()
                .subscribe(SubscribeRule::Authenticated)
                .publish(PublishRule::Server),
        )
}

/// The SockJS WebSocket URL of a new session.
fn sockjs_ws(server: &TestServer, query: &str) -> String {
    let session = uuid::Uuid::new_v4().simple().to_string();
    format!("ws://{}/comet/000/{session}/websocket{query}", server.addr)
}

/// The next SockJS frame's text (`o`, `a[…]`, `c[…]`), skipping heartbeats.
async fn sockjs_frame(socket: &mut WsClient) -> String {
    loop {
        match socket.next_text().await {
            Ok(frame) if frame == "h" => continue,
            Ok(frame) => return frame,
            Err(ended) => panic!("expected a SockJS frame, the socket ended: {ended:?}"),
        }
    }
}

#[actix_web::test]
async fn the_raw_websocket_is_accepted_then_closed_with_the_refusals_code() {
    let server = TestServer::start(secured()).await;
    // No token, a first frame that is not `auth`: 4101, after an error that says why.
    let mut client = server.client().await;
    client.send("subscribe news").await;
    let error = client.recv_error().await;
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(client.until_closed().await, Ended::Closed(Some(4101)));
    // A bad token in the query: the upgrade succeeds (a browser could not read a 401),
    // then 4101.
    let mut forged = WsClient::connect(&format!("{}?token=e30.e30.x", server.ws_url())).await;
    assert_eq!(forged.until_closed().await, Ended::Closed(Some(4101)));
    // A good one: in.
    let mut alice =
        WsClient::connect(&format!("{}?token={}", server.ws_url(), token("alice"))).await;
    alice.subscribe("chat:lobby").await;
    alice.send("channel chat:lobby spoofed").await;
    assert_eq!(alice.recv_error().await["code"], "forbidden");
    let listed = server.comet.node().connections().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user(), Some("alice"));
    server.stop().await;
}

#[actix_web::test]
async fn auth_in_band_works_the_same_over_the_raw_websocket() {
    let server = TestServer::start(secured()).await;
    let mut bob = server.client().await;
    bob.send(&format!("auth {}", token("bob"))).await;
    let answer = bob.recv().await;
    assert!(
        answer.starts_with(r#"authenticated {"connection":"#),
        "{answer}"
    );
    assert!(answer.contains(r#""user":"bob""#), "{answer}");
    let me = bob.request("test/whoami", json!({})).await;
    assert!(me["id"].as_str().is_some());
    bob.subscribe("chat:lobby").await;
    server
        .comet
        .node()
        .publish("chat:lobby", "hello bob")
        .await
        .unwrap();
    assert_eq!(bob.recv_on("chat:lobby").await, "hello bob");
    server.stop().await;
}

#[actix_web::test]
async fn sockjs_carries_the_token_and_the_refusal_codes() {
    let server = TestServer::start(secured()).await;
    // Over the SockJS WebSocket: a refusal is `c[4101,…]`, then the WebSocket close.
    let mut refused = WsClient::connect(&sockjs_ws(&server, "")).await;
    assert_eq!(sockjs_frame(&mut refused).await, "o");
    refused.send(r#"["subscribe news"]"#).await;
    let error = sockjs_frame(&mut refused).await;
    assert!(
        error.starts_with(r#"a["error {\"code\":\"unauthorized\""#),
        "{error}"
    );
    assert_eq!(
        sockjs_frame(&mut refused).await,
        r#"c[4101,"Unauthorized"]"#
    );
    assert_eq!(refused.until_closed().await, Ended::Closed(Some(4101)));

    // The stock sockjs-client keeps the URL's query: `?token=` on the session URL.
    let query = format!("?token={}", token("carol"));
    let mut carol = WsClient::connect(&sockjs_ws(&server, &query)).await;
    assert_eq!(sockjs_frame(&mut carol).await, "o");
    carol.send(r#"["subscribe chat:lobby"]"#).await;
    assert_eq!(
        sockjs_frame(&mut carol).await,
        r#"a["subscribed chat:lobby"]"#
    );

    // Over xhr-polling, `auth` in band.
    let session = format!("/comet/000/{}", uuid::Uuid::new_v4().simple());
    let client = awc::Client::default();
    let base = format!("http://{}{session}", server.addr);
    let mut open = client.post(format!("{base}/xhr")).send().await.unwrap();
    assert_eq!(open.body().await.unwrap(), "o\n");
    let auth = serde_json::to_string(&[format!("auth {}", token("dan"))]).unwrap();
    let sent = client
        .post(format!("{base}/xhr_send"))
        .send_body(auth)
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    let mut answer = client.post(format!("{base}/xhr")).send().await.unwrap();
    let body = String::from_utf8(answer.body().await.unwrap().to_vec()).unwrap();
    assert!(
        body.starts_with(r#"a["authenticated {"#) && body.contains(r#"\"user\":\"dan\""#),
        "{body}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn an_authenticate_hook_allows_only_the_servers_own_origin_by_default() {
    let builder =
        Comet::builder().authenticate_fn(|request: comet::auth::Authenticate| async move {
            match request.connection.cookie("session") {
                Some("s1") => Ok(comet::Identity::user("erin")),
                _ => Err(comet::auth::AuthError::Refused("no session".into())),
            }
        });
    let server = TestServer::start(builder).await;
    let url = server.ws_url();
    let with = |origin: Option<String>| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", "session=s1".parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    // A page of another site carrying the user's cookie: refused before the upgrade.
    match with(Some("http://evil.test".into())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // The server's own page, and a client that is no browser.
    let mut clients = Vec::new();
    for origin in [Some(format!("http://{}", server.addr)), None] {
        let (stream, _) = with(origin).await.expect("allowed");
        let mut client = WsClient::from_stream(stream);
        client.subscribe("x").await;
        clients.push(client);
    }
    eventually("both listed as erin", || async {
        let listed = server.comet.node().connections().await.unwrap();
        listed.len() == 2 && listed.iter().all(|info| info.user() == Some("erin"))
    })
    .await;
    // No cookie: the hook refuses, 4100.
    let mut stranger = server.client().await;
    assert_eq!(stranger.until_closed().await, Ended::Closed(Some(4100)));
    server.stop().await;
}

async fn send_user_and_disconnect_user_reach_a_user_on_another_process(redis: TestRedis) {
    let prefix = format!("auth{}:", uuid::Uuid::new_v4().simple());
    let on = |prefix: &str| redis.on(secured()).prefix(prefix).listen_actions(false);
    let a = TestServer::start(on(&prefix)).await;
    let b = TestServer::start(on(&prefix)).await;
    a.comet.node().ready().await;
    b.comet.node().ready().await;
    let mut phone = WsClient::connect(&format!("{}?token={}", b.ws_url(), token("fay"))).await;
    let mut laptop = WsClient::connect(&format!("{}?token={}", a.ws_url(), token("fay"))).await;
    phone.subscribe("x").await;
    laptop.subscribe("x").await;
    // From process a, to fay's connections on both.
    a.comet
        .node()
        .send_user("fay", "channel notice you have mail")
        .await
        .unwrap();
    assert_eq!(phone.recv_on("notice").await, "you have mail");
    assert_eq!(laptop.recv_on("notice").await, "you have mail");
    a.comet.node().disconnect_user("fay").await.unwrap();
    assert_eq!(
        phone.until_closed().await,
        Ended::Closed(code(
            tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal
        ))
    );
    assert_eq!(laptop.until_closed().await, Ended::Closed(Some(1000)));
    a.stop().await;
    b.stop().await;
}

#[actix_web::test]
async fn a_flood_of_publishes_meets_the_limit_and_the_connection_survives_until_it_floods() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client.subscribe("flood").await;
    // The defaults: 200 a second in bursts of 1,000; 1,500 at once meet the limit (unless
    // taking them took the server over 2.5 s) but are not a flood (at most 500 refused,
    // not the 1,000 within 10 s of `flood_limit`).
    let (mut sink, mut stream) = {
        let url = server.ws_url();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        socket.split()
    };
    // The publisher hears its own messages: each publish is answered by the message or
    // by `rate_limited`.
    sink.send(Message::text("subscribe flood")).await.unwrap();
    match stream.next().await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "subscribed flood"),
        other => panic!("expected subscribed, got {other:?}"),
    }
    let frames = (0..1500).map(|n| Ok(Message::text(format!("channel flood {n}"))));
    sink.send_all(&mut futures_util::stream::iter(frames))
        .await
        .unwrap();
    let mut limited = 0;
    let mut delivered = 0;
    while limited + delivered < 1500 {
        match tokio::time::timeout(common::PATIENCE, stream.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) if text.starts_with("error ") => {
                assert!(text.contains(r#""code":"rate_limited""#), "{text}");
                limited += 1;
            }
            Some(Ok(Message::Text(_))) => delivered += 1,
            Some(Ok(_)) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    }
    assert!((1..=500).contains(&limited), "{limited} refused");
    // The subscriber saw exactly what was not refused.
    for _ in 0..(1500 - limited) {
        client.recv().await;
    }
    // 5,000 at once: the limit, then the flood close (4002). (Not subscribed now, so that
    // its own messages do not fill its queue first: that would be 4001.)
    sink.send(Message::text("unsubscribe flood")).await.unwrap();
    let frames = (0..5000).map(|n| Ok(Message::text(format!("channel flood more {n}"))));
    let _ = sink.send_all(&mut futures_util::stream::iter(frames)).await;
    let closed = loop {
        match tokio::time::timeout(common::PATIENCE, stream.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(closed, Some(4002));
    server.stop().await;
}

redis_tests!(actix: send_user_and_disconnect_user_reach_a_user_on_another_process);
