//! SockJS session behaviour over real connections: the WebSocket transports, clients
//! that vanish, heartbeats, reaping, the bounded buffer, and comet's own protocol over
//! SockJS.

mod sockjs_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sockjs_support::{eventually, session, start, start_comet, TestServer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(server: &TestServer, path: &str) -> Socket {
    connect_async(server.ws_url(path))
        .await
        .expect("websocket")
        .0
}

/// The next text message, skipping pings.
async fn text(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("timed out waiting for a message")
            .expect("socket open")
            .expect("message");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// The close code the server ends the socket with (`None` if it just drops it).
async fn closed(socket: &mut Socket) -> Option<u16> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("timed out waiting for the close");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("expected the close, got {other:?}"),
            Some(Err(_)) | None => return None,
        }
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.expect("send");
}

#[actix_web::test]
async fn websocket_transport() {
    let server = start().await;
    let mut socket = ws(&server, &format!("{}/websocket", session("/echo"))).await;
    assert_eq!(text(&mut socket).await, "o");
    send(&mut socket, "").await; // empty messages are ignored
    send(&mut socket, "[\"a\"]").await;
    assert_eq!(text(&mut socket).await, "a[\"a\"]");
    send(&mut socket, "\"single\"").await;
    assert_eq!(text(&mut socket).await, "a[\"single\"]");
    send(&mut socket, "[\"a").await;
    // Terminated abruptly, as the protocol asks: no `c[…]` frame, the close frame's code.
    assert_eq!(
        closed(&mut socket).await,
        Some(3000),
        "broken framing closes"
    );

    let mut socket = ws(&server, &format!("{}/websocket", session("/close"))).await;
    assert_eq!(text(&mut socket).await, "o");
    assert_eq!(text(&mut socket).await, "c[3000,\"Go away!\"]");
    // The WebSocket close frame carries the same code as the `c[…]` frame before it.
    assert_eq!(closed(&mut socket).await, Some(3000));

    // WebSocket sessions are their socket: two may share a session id.
    let path = format!("{}/websocket", session("/echo"));
    let (mut one, mut two) = (ws(&server, &path).await, ws(&server, &path).await);
    assert_eq!(text(&mut one).await, "o");
    assert_eq!(text(&mut two).await, "o");
    send(&mut one, "[\"a\"]").await;
    send(&mut two, "[\"b\"]").await;
    assert_eq!(text(&mut one).await, "a[\"a\"]");
    assert_eq!(text(&mut two).await, "a[\"b\"]");
}

#[actix_web::test]
async fn websocket_refuses_what_is_not_an_upgrade() {
    let server = start().await;
    let r = server.get("/echo/0/0/websocket").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Can \"Upgrade\" only to \"WebSocket\".")
    );
    let headers = [("Upgrade", "WebSocket"), ("Connection", "close")];
    let r = server
        .request("GET", "/echo/0/0/websocket", &headers, "")
        .await
        .read_all()
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "\"Connection\" must be \"Upgrade\".")
    );
    for headers in [
        &[("Upgrade", "WebSocket"), ("Connection", "Upgrade")][..],
        &[],
    ] {
        let r = server
            .request("POST", "/echo/0/0/websocket", headers, "")
            .await
            .read_all()
            .await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    }
    assert_eq!(
        server
            .get("/disabled_websocket_echo/0/0/websocket")
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .get("/disabled_websocket_echo/websocket")
            .await
            .status,
        404
    );
    // RFC 6455 and the hybi-07/08 drafts (same wire format), and Firefox 6's
    // `Connection: keep-alive, Upgrade`.
    for (version, connection) in [
        ("7", "keep-alive, Upgrade"),
        ("8", "Upgrade"),
        ("13", "Upgrade"),
    ] {
        let headers = [
            ("Upgrade", "websocket"),
            ("Connection", connection),
            ("Sec-WebSocket-Version", version),
            ("Sec-WebSocket-Origin", "http://asd"),
            ("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="),
        ];
        let path = format!("{}/websocket", session("/echo"));
        let r = server.request("GET", &path, &headers, "").await;
        assert_eq!(r.status, 101, "version {version}");
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("HSmrc0sMlYUkAGmm5OPpG2HaGWk=")
        );
        assert_eq!(
            r.header("connection")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("upgrade")
        );
        assert_eq!(
            r.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
            Some("websocket")
        );
        assert_eq!(r.header("content-length"), None);
    }
}

#[actix_web::test]
async fn raw_websocket_of_a_custom_service() {
    let server = start().await;
    let mut socket = ws(&server, "/echo/websocket").await;
    send(&mut socket, "Hello world!\u{ffff}").await;
    assert_eq!(text(&mut socket).await, "Hello world!\u{ffff}");
    let mut socket = ws(&server, "/close/websocket").await;
    assert_eq!(closed(&mut socket).await, Some(3000));
}

#[actix_web::test]
async fn a_vanished_receiver_ends_the_session_with_1002() {
    let server = start().await;
    let url = session("/echo");
    let mut first = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert!(first.chunk().await.is_some(), "prelude");
    assert_eq!(first.chunk().await.as_deref(), Some("o\n"));
    let mut second = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert!(second.chunk().await.is_some(), "prelude");
    assert_eq!(
        second.chunk().await.as_deref(),
        Some("c[2010,\"Another connection still open\"]\n")
    );
    assert_eq!(second.chunk().await, None);
    drop(first);
    // Until the server has seen the first stream go, a new one still meets it (2010,
    // which leaves the session as it is); then it meets the interrupted session.
    let third = std::cell::RefCell::new(None);
    eventually("the server sees the first stream go", || async {
        let mut next = server
            .request("POST", &format!("{url}/xhr_streaming"), &[], "")
            .await;
        assert!(next.chunk().await.is_some(), "prelude");
        let frame = next.chunk().await;
        let still_open = frame.as_deref() == Some("c[2010,\"Another connection still open\"]\n");
        *third.borrow_mut() = frame;
        !still_open
    })
    .await;
    assert_eq!(
        third.into_inner().as_deref(),
        Some("c[1002,\"Connection interrupted\"]\n")
    );

    // The same for a waiting poll.
    let url = session("/echo");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    let waiting = server.request("POST", &format!("{url}/xhr"), &[], "").await;
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!(r.body, "c[2010,\"Another connection still open\"]\n");
    drop(waiting);
    let r = std::cell::RefCell::new(String::new());
    eventually("the server sees the waiting poll go", || async {
        let body = server.post(&format!("{url}/xhr"), "").await.body;
        let still_open = body == "c[2010,\"Another connection still open\"]\n";
        *r.borrow_mut() = body;
        !still_open
    })
    .await;
    assert_eq!(r.into_inner(), "c[1002,\"Connection interrupted\"]\n");
}

#[actix_web::test]
async fn heartbeats_and_reaping() {
    let server = start().await;
    // Comet's connection sends the heartbeat (every FAST_HEARTBEAT here), whatever the
    // transport: a poll with nothing to say answers `h` then.
    let url = session("/comet");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "h\n");
    // A stream gets `h` while idle.
    let mut stream = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert!(stream.chunk().await.is_some(), "prelude");
    assert_eq!(stream.chunk().await.as_deref(), Some("h\n"));
    drop(stream);

    // A session nobody polls is gone after the disconnect delay.
    let url = session("/fast_echo");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), "[\"x\"]")
            .await
            .status,
        204
    );
    eventually("the session is reaped", || async {
        server
            .post(&format!("{url}/xhr_send"), "[\"x\"]")
            .await
            .status
            == 404
    })
    .await;
    // A new request with that id starts a new session.
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
}

#[actix_web::test]
async fn sessions_beyond_max_sessions_are_refused_and_the_open_ones_carry_on() {
    let server = start().await;
    let first = session("/two_sessions_echo");
    let second = session("/two_sessions_echo");
    let third = session("/two_sessions_echo");
    assert_eq!(server.post(&format!("{first}/xhr"), "").await.body, "o\n");
    let stream = server
        .request("POST", &format!("{second}/xhr_streaming"), &[], "")
        .await;
    assert_eq!(stream.status, 200);

    for (method, transport) in [
        ("POST", "xhr"),
        ("POST", "xhr_streaming"),
        ("GET", "eventsource"),
        ("GET", "jsonp?c=callback"),
    ] {
        let refused = server
            .request(method, &format!("{third}/{transport}"), &[], "")
            .await
            .read_all()
            .await;
        assert_eq!(refused.status, 503, "{transport}");
        assert_eq!(refused.body, "Too many sessions.", "{transport}");
    }
    // Nothing was opened for it: sending to it is sending to no session.
    assert_eq!(
        server
            .post(&format!("{third}/xhr_send"), "[\"x\"]")
            .await
            .status,
        404
    );

    // The open sessions are unaffected, and polling an open one is never refused.
    xhr_send(&server, &first, &["still here"]).await;
    assert_eq!(poll(&server, &first).await, ["still here"]);
    drop(stream);

    // Once they are reaped (nobody polls them now), there is room again. A refused
    // request opens nothing, so asking again until one is let in changes nothing else.
    let opened = std::cell::RefCell::new(String::new());
    eventually("the open sessions are reaped", || async {
        let r = server.post(&format!("{third}/xhr"), "").await;
        let refused = r.status == 503;
        *opened.borrow_mut() = r.body;
        !refused
    })
    .await;
    assert_eq!(opened.into_inner(), "o\n");
}

/// Polls `url` until an `a[...]` frame comes, skipping heartbeats; its messages.
async fn poll(server: &TestServer, url: &str) -> Vec<String> {
    for _ in 0..20 {
        let r = server.post(&format!("{url}/xhr"), "").await;
        assert_eq!(r.status, 200);
        if let Some(array) = r.body.strip_prefix('a') {
            return serde_json::from_str(array.trim_end()).expect("a frame");
        }
        assert_eq!(r.body, "h\n", "only heartbeats in between");
    }
    panic!("no messages on {url}");
}

/// Sends jii frames over xhr_send.
async fn xhr_send(server: &TestServer, url: &str, frames: &[&str]) {
    let body = serde_json::to_string(frames).expect("json");
    assert_eq!(
        server.post(&format!("{url}/xhr_send"), &body).await.status,
        204
    );
}

async fn comet_connections(server: &TestServer) -> Vec<comet::ConnectionInfo> {
    server.comet.connections().await.expect("connections")
}

/// Waits for the next connection of the node to go (a `Removed` event).
async fn removed(events: &mut tokio::sync::broadcast::Receiver<comet::ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a connection event within 10 s")
            .expect("the node's events");
        if matches!(event, comet::ConnectionEvent::Removed(_)) {
            return;
        }
    }
}

#[actix_web::test]
async fn comet_protocol_over_xhr_polling() {
    let server = start().await;
    let url = session("/comet");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    let connections = comet_connections(&server).await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].transport, "xhr-polling");

    xhr_send(&server, &url, &["subscribe room"]).await;
    assert_eq!(poll(&server, &url).await, ["subscribed room"]);
    server
        .comet
        .publish("room", json!({ "from": "server" }))
        .await
        .expect("publish");
    assert_eq!(
        poll(&server, &url).await,
        ["channel room {\"from\":\"server\"}"]
    );
    xhr_send(
        &server,
        &url,
        &["action test/echo {\"requestUid\":\"r1\",\"x\":1}"],
    )
    .await;
    let answer = poll(&server, &url).await;
    let answer: serde_json::Value =
        serde_json::from_str(answer[0].strip_prefix("action ").expect("action frame"))
            .expect("json");
    assert_eq!(answer["requestUid"], "r1");
    assert_eq!(answer["echo"]["x"], 1);
    assert_eq!(answer["transport"], "xhr-polling");
    xhr_send(&server, &url, &["nonsense"]).await;
    let error = poll(&server, &url).await;
    assert!(
        error[0].starts_with("error {\"code\":\"bad_frame\""),
        "{error:?}"
    );

    // Reaped after the disconnect delay: the connection is gone with its subscriptions.
    eventually("the session is reaped", || async {
        server.comet.sockjs().session_count() == 0
    })
    .await;
    assert!(comet_connections(&server).await.is_empty());
}

#[actix_web::test]
async fn comet_protocol_over_websockets() {
    let server = start().await;
    let mut socket = ws(&server, &format!("{}/websocket", session("/comet"))).await;
    assert_eq!(text(&mut socket).await, "o");
    send(&mut socket, "[\"subscribe room\"]").await;
    assert_eq!(text(&mut socket).await, "a[\"subscribed room\"]");
    server
        .comet
        .publish("room", "hi \u{2028}")
        .await
        .expect("publish");
    assert_eq!(text(&mut socket).await, "a[\"channel room hi \\u2028\"]");
    assert_eq!(
        comet_connections(&server).await[0].transport,
        "sockjs-websocket"
    );
    let mut events = server.comet.node().events();
    socket.close(None).await.expect("close");
    removed(&mut events).await;
    assert!(
        comet_connections(&server).await.is_empty(),
        "released with the socket"
    );

    // The raw endpoint of the comet scope speaks jii frames without SockJS framing.
    let mut raw = ws(&server, "/comet/websocket").await;
    send(&mut raw, "subscribe room").await;
    assert_eq!(text(&mut raw).await, "subscribed room");
}

#[actix_web::test]
async fn a_client_that_stops_polling_is_bounded() {
    let server = start().await;
    let url = session("/comet");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    xhr_send(&server, &url, &["subscribe room"]).await;
    assert_eq!(poll(&server, &url).await, ["subscribed room"]);
    // The connection queues 4 frames; the fifth closes it as a slow consumer: what it
    // queued is dropped, and the next poll gets the close.
    for i in 0..10 {
        server
            .comet
            .publish("room", format!("m{i}"))
            .await
            .expect("publish");
    }
    eventually("the slow consumer's connection stops", || async {
        comet_connections(&server).await.is_empty()
    })
    .await;
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!(r.body, "c[4001,\"Slow consumer\"]\n");
}

#[actix_web::test]
async fn a_vanished_client_releases_its_comet_connection_at_once() {
    let server = start().await;
    let url = session("/comet");
    let mut stream = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert!(stream.chunk().await.is_some(), "prelude");
    assert_eq!(stream.chunk().await.as_deref(), Some("o\n"));
    assert_eq!(comet_connections(&server).await.len(), 1);
    let mut events = server.comet.node().events();
    drop(stream);
    removed(&mut events).await;
    assert!(comet_connections(&server).await.is_empty());
    // At once: the session, which waits `disconnect_delay` for the client to come back,
    // is still there (interrupted), so the connection did not wait for its reaping.
    assert_eq!(server.comet.sockjs().session_count(), 1);
}

#[actix_web::test]
async fn shutdown_tells_sockjs_clients_to_reconnect() {
    let server = start().await;
    let url = session("/comet");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    let waiting = server.request("POST", &format!("{url}/xhr"), &[], "").await;
    server.comet.shutdown().await;
    assert_eq!(
        waiting.read_all().await.body,
        "c[1001,\"Server shutting down\"]\n"
    );
}

#[actix_web::test]
async fn a_silent_listener_outlives_a_short_client_timeout() {
    // The comet connection drops clients silent for 200 ms; a SockJS client that only
    // listens is silent, and its session (25 s heartbeat) vouches for it.
    let builder =
        comet::Comet::builder().heartbeat(Duration::from_millis(50), Duration::from_millis(200));
    let server = start_comet(builder).await;
    let url = session("/comet");
    let mut stream = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert!(stream.chunk().await.is_some(), "prelude");
    assert_eq!(stream.chunk().await.as_deref(), Some("o\n"));
    // Six heartbeats (300 ms) go by: longer than the client timeout.
    for _ in 0..6 {
        assert_eq!(stream.chunk().await.as_deref(), Some("h\n"));
    }
    assert_eq!(comet_connections(&server).await.len(), 1);
    xhr_send(&server, &url, &["subscribe quiet"]).await;
    let mut next = stream.chunk().await;
    while next.as_deref() == Some("h\n") {
        next = stream.chunk().await;
    }
    assert_eq!(next.as_deref(), Some("a[\"subscribed quiet\"]\n"));
}

/// A WebSocket handshake to `url` with `origin` (if any): the socket, or the HTTP status
/// that refused it.
async fn ws_from(url: &str, origin: Option<&str>) -> Result<Socket, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let mut request = url.into_client_request().expect("a request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("a header value"));
    }
    match connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake with {url}: {other}"),
    }
}

#[actix_web::test]
async fn allowed_origins_guard_the_raw_websocket_endpoint_too() {
    let builder = comet::Comet::builder().sockjs(comet::transport::sockjs::SockJsConfig {
        origins: vec!["good.test:*".into()],
        ..Default::default()
    });
    let server = start_comet(builder).await;
    let raw = server.ws_url("/comet/websocket");
    let sockjs = server.ws_url(&format!("{}/websocket", session("/comet")));

    for url in [&raw, &sockjs] {
        for evil in ["http://evil.test", "null", "good.test"] {
            assert_eq!(
                ws_from(url, Some(evil)).await.err(),
                Some(403),
                "{url} {evil}"
            );
        }
    }
    assert!(
        comet_connections(&server).await.is_empty(),
        "none was opened"
    );

    // An allowed page, and a client that is no browser (no Origin), get in.
    let mut page = ws_from(&raw, Some("https://good.test:8443"))
        .await
        .expect("an allowed origin");
    send(&mut page, "subscribe news").await;
    assert_eq!(text(&mut page).await, "subscribed news");
    let mut service = ws_from(&raw, None).await.expect("no Origin, no check");
    send(&mut service, "subscribe news").await;
    assert_eq!(text(&mut service).await, "subscribed news");
    let mut session_page = ws_from(&sockjs, Some("http://good.test"))
        .await
        .expect("an allowed origin over SockJS");
    assert_eq!(text(&mut session_page).await, "o");
}

#[actix_web::test]
async fn a_client_that_closes_gets_the_close_answered_by_any_service() {
    // The echo service never closes by itself: the engine answers the client's close
    // frame (RFC 6455 §5.5.1), on the raw and the SockJS WebSocket alike.
    let server = start().await;
    for path in [
        "/echo/websocket".to_owned(),
        format!("{}/websocket", session("/echo")),
    ] {
        let mut socket = ws(&server, &path).await;
        if path != "/echo/websocket" {
            assert_eq!(text(&mut socket).await, "o");
        }
        socket.close(None).await.expect("close sent");
        assert_eq!(closed(&mut socket).await, Some(1000), "{path}");
    }
}
