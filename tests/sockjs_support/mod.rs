//! Shared by the SockJS integration tests: a server with the protocol's test services
//! (and comet itself) on 127.0.0.1:0, and a raw HTTP/1.1 client that shows exactly what
//! went over the wire, chunk by chunk.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

#[path = "../common/eventually.rs"]
mod eventually;
#[path = "../../examples/sockjs-testsrv/services.rs"]
mod services;

#[allow(unused_imports)] // not every test binary polls
pub use eventually::eventually;

use actix_web::{App, HttpServer};
use comet::transport::sockjs::{SockJs, SockJsConfig};
use comet::{Comet, CometBuilder, Limits};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any single read may take before a test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat of `/comet` (its connections send it, over every transport).
pub const FAST_HEARTBEAT: Duration = Duration::from_millis(300);
/// Disconnect delay of the `/fast_*` endpoints.
pub const FAST_DISCONNECT: Duration = Duration::from_millis(400);

fn sockjs(config: SockJsConfig) -> SockJs {
    SockJs::new(config, services::echo).expect("valid config")
}

/// The test services' options, as `sockjs-testsrv` serves them by default.
fn base() -> SockJsConfig {
    services::base(None)
}

fn fast() -> SockJsConfig {
    SockJsConfig {
        disconnect_delay: FAST_DISCONNECT,
        ..base()
    }
}

/// A running test server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Comet at `/comet` with `sockjs-testsrv`'s test actions: fast heartbeat and
    /// disconnect delay, at most 4 queued messages.
    pub comet: Comet,
}

/// Starts the test server. Endpoints: `/echo`, `/close`, `/disabled_websocket_echo`,
/// `/cookie_needed_echo` (the protocol's, from `sockjs-testsrv`'s services),
/// `/fast_echo` (400 ms disconnect delay), `/two_sessions_echo`, `/strict_echo` (only
/// origin `good.test:*`) and `/comet` (300 ms heartbeat, 400 ms disconnect delay, at
/// most 4 queued frames).
pub async fn start() -> TestServer {
    let mut endpoints = services::protocol_endpoints(base()).expect("valid config");
    endpoints.extend([
        ("/fast_echo", sockjs(fast())),
        (
            "/two_sessions_echo",
            sockjs(SockJsConfig {
                max_sessions: 2,
                ..fast()
            }),
        ),
        (
            "/strict_echo",
            sockjs(SockJsConfig {
                origins: vec!["good.test:*".into()],
                ..base()
            }),
        ),
    ]);
    let builder = Comet::builder()
        .sockjs(fast())
        .limits(Limits {
            outbound_queue: 4,
            ..Limits::default()
        })
        .heartbeat(FAST_HEARTBEAT, Duration::from_secs(60));
    let comet = services::test_actions(builder)
        .build()
        .expect("comet builds");
    serve(comet, endpoints)
}

/// Serves only `/comet`, from `builder`.
pub async fn start_comet(builder: CometBuilder) -> TestServer {
    serve(builder.build().expect("comet builds"), Vec::new())
}

fn serve(comet: Comet, endpoints: Vec<(&'static str, SockJs)>) -> TestServer {
    let app_comet = comet.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new().service(app_comet.scope("/comet"));
        for (prefix, endpoint) in &endpoints {
            app = app.service(endpoint.scope(prefix));
        }
        app
    })
    .workers(1)
    .h1_allow_half_closed(false)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    TestServer { addr, comet }
}

impl TestServer {
    /// An HTTP request; returns once the response head is in.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        request(self.addr, method, path, headers, body).await
    }

    /// `GET path`, read whole.
    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], "").await.read_all().await
    }

    /// `POST path` with `body`, read whole.
    pub async fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], body).await.read_all().await
    }

    /// A `ws://` URL on this server.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }
}

/// A fresh session path under `prefix`, e.g. `/echo/000/<uuid>`.
pub fn session(prefix: &str) -> String {
    format!("{prefix}/000/{}", uuid::Uuid::new_v4().simple())
}

/// A response: status and headers at once, the body as it comes.
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    framing: Framing,
    /// The body, once read with [`Response::read_all`].
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
    Done,
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    request_version(addr, "1.1", method, path, headers, body).await
}

/// A request in HTTP version `version` (`1.0` or `1.1`).
pub async fn request_version(
    addr: SocketAddr,
    version: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/{version}\r\nHost: {addr}\r\n");
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader).await;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader).await;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let framing = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        Framing::Chunked
    } else if let Some(length) = header("content-length") {
        Framing::Length(length.parse().expect("content-length"))
    } else if status == 204 || status == 304 || status == 101 {
        Framing::Done
    } else {
        Framing::UntilClose
    };
    Response {
        status,
        headers,
        reader,
        framing,
        body: String::new(),
    }
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line))
        .await
        .expect("timed out reading a line")
        .expect("read");
    line.trim_end_matches(['\r', '\n']).to_owned()
}

impl Response {
    /// A header by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the body: one chunk of a chunked body, the whole of any other;
    /// `None` at its end.
    pub async fn chunk(&mut self) -> Option<String> {
        match self.framing {
            Framing::Done => None,
            Framing::Length(length) => {
                self.framing = Framing::Done;
                let mut body = vec![0; length];
                tokio::time::timeout(READ_TIMEOUT, self.reader.read_exact(&mut body))
                    .await
                    .expect("timed out reading the body")
                    .expect("read");
                Some(String::from_utf8(body).expect("utf-8 body"))
            }
            Framing::UntilClose => {
                self.framing = Framing::Done;
                let mut body = Vec::new();
                tokio::time::timeout(READ_TIMEOUT, self.reader.read_to_end(&mut body))
                    .await
                    .expect("timed out reading the body")
                    .expect("read");
                Some(String::from_utf8(body).expect("utf-8 body"))
            }
            Framing::Chunked => {
                let size = read_line(&mut self.reader).await;
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                if size == 0 {
                    read_line(&mut self.reader).await;
                    self.framing = Framing::Done;
                    return None;
                }
                let mut chunk = vec![0; size + 2];
                tokio::time::timeout(READ_TIMEOUT, self.reader.read_exact(&mut chunk))
                    .await
                    .expect("timed out reading a chunk")
                    .expect("read");
                chunk.truncate(size);
                Some(String::from_utf8(chunk).expect("utf-8 chunk"))
            }
        }
    }

    /// Reads the rest of the body into `body`.
    pub async fn read_all(mut self) -> Response {
        while let Some(chunk) = self.chunk().await {
            self.body.push_str(&chunk);
        }
        self
    }

    /// Asserts the content type, ignoring spaces.
    pub fn assert_content_type(&self, expected: &str) {
        let got = self
            .header("content-type")
            .unwrap_or_default()
            .replace(' ', "");
        assert_eq!(got, expected.replace(' ', ""));
    }

    /// Asserts the headers that forbid caching, and proxies' rewriting (`no-transform`).
    pub fn assert_not_cached(&self) {
        assert_eq!(
            self.header("cache-control"),
            Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
        );
        assert_eq!(self.header("expires"), None);
        assert_eq!(self.header("last-modified"), None);
    }

    /// Asserts the CORS headers for a request with `origin`: that origin back (`null`
    /// too) with credentials, or `*` without credentials for a request without one.
    pub fn assert_cors(&self, origin: Option<&str>) {
        match origin {
            Some(origin) => {
                assert_eq!(self.header("access-control-allow-origin"), Some(origin));
                assert_eq!(
                    self.header("access-control-allow-credentials"),
                    Some("true")
                );
            }
            None => {
                assert_eq!(self.header("access-control-allow-origin"), Some("*"));
                assert_eq!(self.header("access-control-allow-credentials"), None);
            }
        }
        assert_eq!(self.header("vary"), Some("Origin"));
    }

    /// Asserts the headers of a year-long cacheable answer.
    pub fn assert_cached_for_a_year(&self) {
        let cache = self.header("cache-control").unwrap_or_default();
        assert!(cache.contains("public"), "{cache}");
        assert!(cache.contains("max-age=31536000"), "{cache}");
        assert!(self.header("expires").is_some());
    }
}
