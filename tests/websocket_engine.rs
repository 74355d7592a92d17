//! The one WebSocket engine: the raw `<prefix>/websocket` and SockJS's
//! `<prefix>/<server>/<session>/websocket` answer bad input alike, because they are the
//! same engine with another framing: a binary message that is not UTF-8 gets a
//! `bad_frame` error and the connection lives on, a text message that is not UTF-8 closes
//! with 1007, a message over the transport cap closes with 1009.

mod common;

use comet::Comet;
use common::{Ended, TestServer, WsClient};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// The two framings of one server.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Raw,
    SockJs,
}

const BOTH: [Framing; 2] = [Framing::Raw, Framing::SockJs];

/// A client of `server` over `framing`, past SockJS's `o`.
async fn connect(server: &TestServer, framing: Framing) -> WsClient {
    match framing {
        Framing::Raw => server.client().await,
        Framing::SockJs => {
            let url = format!("ws://{}/comet/000/engine/websocket", server.addr);
            let mut client = WsClient::connect(&url).await;
            assert_eq!(client.recv().await, "o");
            client
        }
    }
}

/// Sends a comet frame over `framing`.
async fn send(client: &mut WsClient, framing: Framing, frame: &str) {
    match framing {
        Framing::Raw => client.send(frame).await,
        Framing::SockJs => client.send(&serde_json::to_string(&[frame]).unwrap()).await,
    }
}

/// The next comet frame over `framing` (SockJS heartbeats skipped).
async fn recv(client: &mut WsClient, framing: Framing) -> String {
    match framing {
        Framing::Raw => client.recv().await,
        Framing::SockJs => loop {
            let text = client.recv().await;
            if text == "h" {
                continue;
            }
            let array = text.strip_prefix('a').expect("an a[...] frame");
            let mut frames: Vec<String> = serde_json::from_str(array).expect("JSON array");
            assert_eq!(frames.len(), 1, "one frame at a time here: {frames:?}");
            return frames.remove(0);
        },
    }
}

/// The close code after anything else the server sends (SockJS: its `c[…]` frame).
async fn close_code(client: &mut WsClient) -> Option<u16> {
    loop {
        match client.next_text().await {
            Ok(_) => continue,
            Err(Ended::Closed(code)) => return code,
            Err(Ended::Dropped) => return None,
        }
    }
}

#[actix_web::test]
async fn binary_that_is_not_utf8_is_answered_and_the_connection_lives_on() {
    let server = TestServer::start(Comet::builder()).await;
    for framing in BOTH {
        let mut client = connect(&server, framing).await;
        client
            .send_raw(Message::binary(vec![0xff, 0xfe, 0x00]))
            .await;
        let error = recv(&mut client, framing).await;
        assert!(
            error.starts_with(r#"error {"code":"bad_frame""#),
            "{framing:?}: {error}"
        );
        send(&mut client, framing, "subscribe alive").await;
        assert_eq!(recv(&mut client, framing).await, "subscribed alive");
    }
    server.stop().await;
}

#[actix_web::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start(Comet::builder()).await;
    for framing in BOTH {
        let mut client = connect(&server, framing).await;
        let frame = Frame::message(vec![b'a', 0xff, 0xfe], OpCode::Data(Data::Text), true);
        client.send_raw(Message::Frame(frame)).await;
        assert_eq!(close_code(&mut client).await, Some(1007), "{framing:?}");
    }
    server.stop().await;
}

#[actix_web::test]
async fn a_message_over_the_transport_cap_closes_with_1009() {
    let server = TestServer::start(Comet::builder()).await;
    for framing in BOTH {
        let mut client = connect(&server, framing).await;
        let enormous = "x".repeat(2 * 1024 * 1024);
        client.send(&enormous).await;
        assert_eq!(close_code(&mut client).await, Some(1009), "{framing:?}");
    }
    server.stop().await;
}

#[actix_web::test]
async fn the_same_slow_consumer_bound_over_both() {
    let limits = comet::Limits {
        outbound_queue: 8,
        ..comet::Limits::default()
    };
    let server = TestServer::start(Comet::builder().limits(limits)).await;
    for framing in BOTH {
        let mut client = connect(&server, framing).await;
        let channel = format!("flood-{framing:?}");
        send(&mut client, framing, &format!("subscribe {channel}")).await;
        assert_eq!(
            recv(&mut client, framing).await,
            format!("subscribed {channel}")
        );
        // The client does not read: a burst far beyond the bound closes it with 4001,
        // whichever framing it came by.
        let payload = "z".repeat(64 * 1024);
        for _ in 0..200 {
            if server
                .comet
                .publish(&channel, payload.as_str())
                .await
                .is_err()
            {
                break;
            }
        }
        assert_eq!(close_code(&mut client).await, Some(4001), "{framing:?}");
    }
    server.stop().await;
}
