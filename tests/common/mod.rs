//! Shared harness of the integration tests: a real comet server on a free port and a real
//! WebSocket client that speaks jii's frames.
#![allow(dead_code)] // each test binary uses a different part of the harness

mod eventually;

#[allow(unused_imports)] // not every test binary polls
pub use eventually::eventually;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{dev::ServerHandle, App, HttpServer};
use comet::protocol::{action_call_frame, parse_server_frame, RequestUid, ServerFrame};
use comet::{Action, Comet, CometBuilder};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame that must come.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A comet mounted at `/comet` in a real actix-web server on 127.0.0.1, port chosen by
/// the OS.
pub struct TestServer {
    pub addr: SocketAddr,
    pub comet: Comet,
    handle: ServerHandle,
}

impl TestServer {
    /// Starts `builder` (with the test actions added) behind a real HTTP server.
    /// Call inside `#[actix_web::test]`.
    pub async fn start(builder: CometBuilder) -> TestServer {
        TestServer::start_at(builder, "/comet").await
    }

    /// Same, mounted at `path`.
    pub async fn start_at(builder: CometBuilder, path: &'static str) -> TestServer {
        let comet = with_test_actions(builder).build().expect("comet builds");
        let app_comet = comet.clone();
        let server = HttpServer::new(move || App::new().service(app_comet.scope(path)))
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(("127.0.0.1", 0))
            .expect("bind a free port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestServer {
            addr,
            comet,
            handle,
        }
    }

    /// The WebSocket URL of the comet at `/comet`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/comet/websocket", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> WsClient {
        WsClient::connect(&self.ws_url()).await
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The actions every test server has.
fn with_test_actions(builder: CometBuilder) -> CometBuilder {
    builder
        .action_fn("site/test", |action: Action| async move {
            Ok(json!({ "echo": action.params() }))
        })
        .action_fn("test/whoami", |action: Action| async move {
            let info = action.connection();
            Ok(json!({
                "id": info.id.as_str(),
                "ip": info.ip,
                "userAgent": info.header("User-Agent"),
                "query": info.query,
                "transport": info.transport,
                "route": action.route(),
                "requestUid": action.request_uid().as_value(),
            }))
        })
        .action_fn("test/fail", |_| async move {
            Err(comet::ActionError::new(
                "nick_taken",
                "that nickname is taken",
            ))
        })
        .action_fn("test/io_error", |_| async move {
            let parsed: Value = serde_json::from_str("{broken")?;
            Ok(parsed)
        })
        .action_fn("test/panic", |_| async move {
            if true {
                panic!("handler blew up (expected by the test)");
            }
            Ok(Value::Null)
        })
        .action_fn("test/hold", |action: Action| async move {
            let name = action.str_param("gate").unwrap_or_default().to_owned();
            gate(&name).notified().await;
            Ok(json!({ "held": name }))
        })
        .action_fn("test/publish", |action: Action| async move {
            let channel = action.str_param("channel").unwrap_or("test").to_owned();
            let message = action.param("message").cloned().unwrap_or(Value::Null);
            action.node().publish(&channel, message).await?;
            Ok(json!({ "published": true }))
        })
}

/// The gates `test/hold {"gate":<name>}` waits on, by name: a call that finishes when
/// the test says so ([`open_gate`]), not after a while.
static GATES: std::sync::LazyLock<Mutex<HashMap<String, Arc<Notify>>>> =
    std::sync::LazyLock::new(Default::default);

fn gate(name: &str) -> Arc<Notify> {
    let mut gates = GATES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.entry(name.to_owned()).or_default().clone()
}

/// Lets the `test/hold` call waiting on gate `name` (or the next one) finish. A gate
/// name is the test's own (e.g. with a uuid): tests of one binary share the gates.
pub fn open_gate(name: &str) {
    gate(name).notify_one();
}

/// A gate name no other test uses.
pub fn gate_name(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// A real WebSocket client speaking jii's frames.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_uid: u64,
}

/// How a read ended when no text frame came.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The server sent a close frame with this code.
    Closed(Option<u16>),
    /// The TCP connection ended without a close frame, or failed.
    Dropped,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        WsClient {
            stream,
            next_uid: 1,
        }
    }

    /// Wraps an already connected stream (e.g. one opened with custom headers).
    pub fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        WsClient {
            stream,
            next_uid: 1,
        }
    }

    pub async fn send(&mut self, frame: &str) {
        self.stream
            .send(Message::text(frame))
            .await
            .expect("frame sent");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("message sent");
    }

    /// The next text frame, or how the connection ended.
    pub async fn next_text(&mut self) -> Result<String, Ended> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame within the patience window");
            match next {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue, // ping/pong/binary: not ours to check here
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// The payload of the next pong.
    pub async fn next_pong(&mut self) -> Vec<u8> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a pong within the patience window");
            match next {
                Some(Ok(Message::Pong(payload))) => return payload.to_vec(),
                Some(Ok(_)) => continue,
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    }

    /// Waits for the next ping (answered with a pong as it is read); panics on anything
    /// else but a pong.
    pub async fn next_ping(&mut self) {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a ping within the patience window");
            match next {
                Some(Ok(Message::Ping(_))) => return,
                Some(Ok(Message::Pong(_))) => continue,
                other => panic!("expected a ping, got {other:?}"),
            }
        }
    }

    /// The next text frame; panics if the connection ends.
    pub async fn recv(&mut self) -> String {
        match self.next_text().await {
            Ok(text) => text,
            Err(ended) => panic!("expected a frame, the connection ended: {ended:?}"),
        }
    }

    /// Subscribes and waits for the acknowledgement.
    pub async fn subscribe(&mut self, channel: &str) {
        self.send(&format!("subscribe {channel}")).await;
        assert_eq!(self.recv().await, format!("subscribed {channel}"));
    }

    /// Unsubscribes and waits for the acknowledgement.
    pub async fn unsubscribe(&mut self, channel: &str) {
        self.send(&format!("unsubscribe {channel}")).await;
        assert_eq!(self.recv().await, format!("unsubscribed {channel}"));
    }

    /// Reads until a `channel <channel> …` frame and returns its payload.
    pub async fn recv_on(&mut self, channel: &str) -> String {
        let frame = self.recv().await;
        match parse_server_frame(&frame) {
            Ok(ServerFrame::Channel {
                channel: got,
                payload,
            }) if got == channel => payload.to_owned(),
            _ => panic!("expected a message on `{channel}`, got: {frame}"),
        }
    }

    /// Sends an action call and returns the uid used.
    pub async fn call(&mut self, route: &str, params: Value) -> String {
        let uid = format!("u{}", self.next_uid);
        self.next_uid += 1;
        let frame = action_call_frame(route, &RequestUid::from(uid.as_str()), &params);
        self.send(&frame).await;
        uid
    }

    /// Reads the next frame, which must be an `action` answer, and returns its object.
    pub async fn recv_answer(&mut self) -> Map<String, Value> {
        let frame = self.recv().await;
        match parse_server_frame(&frame) {
            Ok(ServerFrame::Action(object)) => object,
            _ => panic!("expected an action answer, got: {frame}"),
        }
    }

    /// Calls an action and returns its answer (which must carry the same requestUid).
    pub async fn request(&mut self, route: &str, params: Value) -> Map<String, Value> {
        let uid = self.call(route, params).await;
        let answer = self.recv_answer().await;
        assert_eq!(answer["requestUid"], uid, "answer to the call just made");
        answer
    }

    /// Reads the next frame, which must be an `error {…}` frame.
    pub async fn recv_error(&mut self) -> Map<String, Value> {
        let frame = self.recv().await;
        match parse_server_frame(&frame) {
            Ok(ServerFrame::Error(object)) => object,
            _ => panic!("expected an error frame, got: {frame}"),
        }
    }

    /// Reads until the connection ends, skipping text frames; returns how it ended.
    pub async fn until_closed(&mut self) -> Ended {
        loop {
            match self.next_text().await {
                Ok(_) => continue,
                Err(ended) => return ended,
            }
        }
    }

    /// Closes the WebSocket politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Drops the TCP connection without a close frame, like a vanished client.
    pub fn vanish(self) {
        drop(self.stream);
    }
}

/// The close code a normal close frame carries, for comparisons.
pub fn code(code: CloseCode) -> Option<u16> {
    Some(u16::from(code))
}
