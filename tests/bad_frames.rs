//! Bad input over a real WebSocket: every kind gets a clear error frame, the connection
//! stays open, and nothing is lost for anyone else.

mod common;

use comet::Comet;
use common::{Ended, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Sends `frame` and returns the code of the error frame it gets back.
async fn error_code(client: &mut common::WsClient, frame: &str) -> String {
    client.send(frame).await;
    let error = client.recv_error().await;
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error frames explain themselves: {error:?}"
    );
    error["code"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn malformed_frames_get_error_frames_and_the_connection_lives_on() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client.subscribe("alive").await;

    for (frame, expected) in [
        ("", "bad_frame"),
        ("hello", "bad_frame"),
        ("SUBSCRIBE x", "bad_frame"),
        ("subscribe", "bad_frame"),
        ("subscribe ", "bad_frame"),
        ("unsubscribe", "bad_frame"),
        ("channel", "bad_frame"),
        ("channel test", "bad_frame"),
        ("channel  payload-without-channel", "bad_channel"),
        ("subscribe bad\u{1}name", "bad_channel"),
        ("action", "bad_frame"),
        ("action site/test", "bad_frame"),
        ("action site/test {}", "bad_frame"),
        ("action site/test {not json", "bad_json"),
        ("action site/test [1,2]", "bad_json"),
        (r#"action site/test {"requestUid":null}"#, "bad_frame"),
    ] {
        assert_eq!(
            error_code(&mut client, frame).await,
            expected,
            "for {frame:?}"
        );
    }

    // Still subscribed, still served.
    client.send("channel alive yes").await;
    assert_eq!(client.recv_on("alive").await, "yes");
    let answer = client.request("site/test", json!({ "ok": 1 })).await;
    assert_eq!(answer["echo"]["ok"], 1);
    server.stop().await;
}

#[actix_web::test]
async fn a_bad_route_is_answered_to_the_pending_request() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client
        .send(&format!(
            r#"action {} {{"requestUid":"r1"}}"#,
            "x".repeat(300)
        ))
        .await;
    let answer = client.recv_answer().await;
    assert_eq!(answer["requestUid"], "r1");
    assert_eq!(answer["error"]["code"], "bad_route");
    server.stop().await;
}

#[actix_web::test]
async fn a_frame_over_the_limit_answers_too_large_and_the_connection_lives_on() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client.subscribe("big").await;
    let huge = format!("channel big {}", "x".repeat(70 * 1024));
    assert_eq!(error_code(&mut client, &huge).await, "too_large");
    // Just under the limit passes, unchanged.
    let payload = "y".repeat(64 * 1024 - "channel big ".len());
    client.send(&format!("channel big {payload}")).await;
    assert_eq!(client.recv_on("big").await, payload);
    server.stop().await;
}

#[actix_web::test]
async fn a_frame_over_the_transport_cap_closes_with_1009() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    let enormous = format!("channel big {}", "x".repeat(2 * 1024 * 1024));
    client.send(&enormous).await;
    assert_eq!(client.until_closed().await, Ended::Closed(Some(1009)));
    // The server is fine.
    let mut other = server.client().await;
    other.subscribe("still-up").await;
    server.stop().await;
}

#[actix_web::test]
async fn binary_frames_are_read_as_text_when_they_are_utf8() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client
        .send_raw(Message::binary(b"subscribe bin".to_vec()))
        .await;
    assert_eq!(client.recv().await, "subscribed bin");
    client
        .send_raw(Message::binary(vec![0xff, 0xfe, 0x00]))
        .await;
    let error = client.recv_error().await;
    assert_eq!(error["code"], "bad_frame");
    client.send("channel bin still here").await;
    assert_eq!(client.recv_on("bin").await, "still here");
    server.stop().await;
}

#[actix_web::test]
async fn one_clients_garbage_costs_others_nothing() {
    let server = TestServer::start(Comet::builder()).await;
    let mut noisy = server.client().await;
    let mut reader = server.client().await;
    reader.subscribe("calm").await;
    for n in 0..100 {
        noisy.send(&format!("garbage {n}")).await;
        noisy.send(&format!("channel calm {n}")).await;
    }
    for n in 0..100 {
        assert_eq!(reader.recv_on("calm").await, n.to_string());
    }
    for _ in 0..100 {
        assert_eq!(noisy.recv_error().await["code"], "bad_frame");
    }
    server.stop().await;
}
