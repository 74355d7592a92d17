//! Opening many WebSocket connections fast: bounded concurrency, and several 127.0.0.x
//! source addresses so that 10,000+ connections to one port never run out of ports.
//!
//! A connection speaks jii's frames over the raw WebSocket endpoint (`<prefix>/websocket`,
//! one frame per message) or, with [`Transport::Sockjs`], over SockJS's WebSocket
//! transport (`<prefix>/<server>/<session>/websocket`: `o` first, frames sent as
//! `["…"]`, received in `a[…]` batches, `h` heartbeats, `c[…]` to close). [`Ws`] hides
//! the difference: the workloads send and receive one text message per frame either way.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::stream::{self, Stream, StreamExt};
use futures_util::{Sink, SinkExt};
use indicatif::ProgressBar;
use tokio::net::{lookup_host, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

use crate::auth::{Credentials, TokenIn};

/// The read buffer of each client connection. tungstenite zero-fills its whole read
/// buffer's spare room before every read (128 KiB by default): at paced rates, with one
/// small frame per read, that memset was 29 % of the generator's CPU (perf) and made it,
/// not the server, the bottleneck. A small buffer still grows for large messages.
const READ_BUFFER: usize = 8 * 1024;

/// How the generator talks to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// jii's frames, one per WebSocket message, at the given `…/websocket` URL.
    #[default]
    Websocket,
    /// SockJS's WebSocket transport beside it: `…/websocket` becomes
    /// `…/<server>/<session>/websocket`, a new session per connection.
    Sockjs,
    /// Socket.IO over Engine.IO's WebSocket beside it: `…/websocket` becomes
    /// `…/socket.io/?EIO=4&transport=websocket` (comet's, or a Socket.IO server mapping
    /// comet's events, `bench/socketio-node`).
    Socketio,
}

/// A client connection: one text message per jii frame, whatever the transport.
pub struct Ws {
    inner: WebSocketStream<TcpStream>,
    sockjs: bool,
    /// Frames of a SockJS `a[…]` batch not handed out yet.
    pending: VecDeque<String>,
    /// Socket.IO's acks in flight (`--transport socketio`).
    sio: Option<crate::sio::Sio>,
    /// A pong owed to an Engine.IO ping.
    pong: bool,
}

impl Ws {
    /// Reads the next frame (SockJS: of the current batch, or of the next one).
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(Message::text(frame))));
            }
            let message = match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => message,
                other => return other,
            };
            if let Some(sio) = &mut self.sio {
                let Message::Text(text) = &message else {
                    return Poll::Ready(Some(Ok(message)));
                };
                match sio.incoming(text.as_str()) {
                    crate::sio::Incoming::Frame(frame) => {
                        return Poll::Ready(Some(Ok(Message::text(frame))))
                    }
                    crate::sio::Incoming::Close => {
                        return Poll::Ready(Some(Ok(Message::Close(None))))
                    }
                    crate::sio::Incoming::Ping => {
                        self.pong = true;
                        if let Poll::Ready(Ok(())) = Pin::new(&mut self.inner).poll_ready(cx) {
                            self.pong = false;
                            let _ = Pin::new(&mut self.inner).start_send(Message::text("3"));
                            let _ = Pin::new(&mut self.inner).poll_flush(cx);
                        }
                    }
                    crate::sio::Incoming::Nothing => {}
                }
                continue;
            }
            if !self.sockjs {
                return Poll::Ready(Some(Ok(message)));
            }
            let Message::Text(text) = &message else {
                return Poll::Ready(Some(Ok(message)));
            };
            let text = text.as_str();
            if let Some(batch) = text.strip_prefix('a') {
                match serde_json::from_str::<Vec<String>>(batch) {
                    Ok(frames) => self.pending.extend(frames),
                    Err(err) => {
                        let reason = format!("a broken SockJS `a` frame ({err}): {text:.80}");
                        return Poll::Ready(Some(Err(Error::Io(std::io::Error::other(reason)))));
                    }
                }
            } else if text.starts_with('c') {
                // The server closes the session: as a WebSocket close to the workloads.
                return Poll::Ready(Some(Ok(Message::Close(None))));
            }
            // `h` (heartbeat), or a stray `o`: nothing for the workload.
        }
    }
}

impl Stream for Ws {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_frame(cx)
    }
}

impl Sink<Message> for Ws {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if std::mem::take(&mut this.pong) {
            Pin::new(&mut this.inner).start_send(Message::text("3"))?;
        }
        let message = match message {
            Message::Text(text) if this.sio.is_some() => {
                let sio = this.sio.as_mut().expect("checked");
                Message::text(sio.outgoing(text.as_str()))
            }
            // One frame per SockJS message: a JSON array of one string.
            Message::Text(text) if this.sockjs => {
                let array = serde_json::to_string(&[text.as_str()])
                    .map_err(|err| Error::Io(std::io::Error::other(err)))?;
                Message::text(array)
            }
            other => other,
        };
        Pin::new(&mut this.inner).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// Numbers SockJS sessions, so that no two connections of a run share one.
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// Where to connect, and from which source addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://host:port/path`.
    pub url: String,
    /// The resolved server address.
    pub addr: SocketAddr,
    /// How many 127.0.0.x source addresses to spread over (1 = the OS's choice).
    pub sources: u8,
    /// Raw WebSocket or SockJS.
    pub transport: Transport,
    /// Tokens the connections present (none: they connect without one).
    pub credentials: Option<Credentials>,
}

impl Target {
    /// Resolves `url`'s host.
    pub async fn new(url: &str, sources: u8) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("only ws:// URLs are supported: {url}"))?;
        let host_port = rest.split('/').next().unwrap_or(rest);
        let addr = lookup_host(host_port)
            .await
            .map_err(|err| format!("cannot resolve {host_port}: {err}"))?
            .next()
            .ok_or_else(|| format!("{host_port} resolves to nothing"))?;
        Ok(Target {
            url: url.to_owned(),
            addr,
            sources: sources.max(1),
            transport: Transport::Websocket,
            credentials: None,
        })
    }

    /// The same server over `transport`; SockJS needs the raw endpoint's URL
    /// (`…/websocket`) to find the prefix.
    pub fn over(mut self, transport: Transport) -> Result<Target, String> {
        if transport != Transport::Websocket && !self.url.ends_with("/websocket") {
            return Err(format!(
                "--transport sockjs/socketio needs the raw endpoint's URL (`ws://host/<prefix>/websocket`), \
                 not {}",
                self.url
            ));
        }
        self.transport = transport;
        Ok(self)
    }

    /// The same server, its connections presenting `credentials`' tokens.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Target {
        self.credentials = credentials;
        self
    }

    /// The URL connection number `n` opens, with its `?token=` if it has one to give.
    fn url_for(&self, n: usize) -> String {
        let url = self.endpoint_for(n);
        match &self.credentials {
            Some(credentials) if credentials.place == TokenIn::Query => {
                // JWTs are base64url and dots: nothing to escape.
                let join = if url.contains('?') { '&' } else { '?' };
                format!("{url}{join}token={}", credentials.token(n))
            }
            _ => url,
        }
    }

    /// The endpoint connection number `n` opens.
    fn endpoint_for(&self, n: usize) -> String {
        match self.transport {
            Transport::Websocket => self.url.clone(),
            Transport::Socketio => format!(
                "{}/socket.io/?EIO=4&transport=websocket",
                self.url.trim_end_matches("/websocket")
            ),
            Transport::Sockjs => {
                let prefix = self.url.trim_end_matches("/websocket");
                let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
                format!(
                    "{prefix}/{:03}/bench{}x{session}/websocket",
                    n % 1000,
                    std::process::id()
                )
            }
        }
    }

    /// Opens connection number `n`; with credentials that go in a frame, sends its `auth
    /// <token>` before anything else.
    pub async fn connect(&self, n: usize) -> Result<Ws, String> {
        let socket = TcpSocket::new_v4().map_err(|err| err.to_string())?;
        if self.sources > 1 && self.addr.ip().is_loopback() {
            let last = 1 + (n % self.sources as usize) as u8;
            let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0);
            socket
                .bind(source)
                .map_err(|err| format!("bind {source}: {err}"))?;
        }
        let stream = socket
            .connect(self.addr)
            .await
            .map_err(|err| format!("connect {}: {err}", self.addr))?;
        stream.set_nodelay(true).map_err(|err| err.to_string())?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let url = self.url_for(n);
        let (inner, _) = client_async_with_config(url.as_str(), stream, Some(config))
            .await
            .map_err(|err| format!("websocket handshake with {url}: {err}"))?;
        let mut ws = Ws {
            inner,
            sockjs: self.transport == Transport::Sockjs,
            pending: VecDeque::new(),
            sio: None,
            pong: false,
        };
        if self.transport == Transport::Socketio {
            match ws.inner.next().await {
                Some(Ok(Message::Text(open))) if open.as_str().starts_with('0') => {}
                other => {
                    return Err(format!(
                        "{url}: expected the Engine.IO open packet, got {other:?}"
                    ))
                }
            }
            futures_util::SinkExt::send(&mut ws.inner, Message::text("40"))
                .await
                .map_err(|err| format!("{url}: {err}"))?;
            match ws.inner.next().await {
                Some(Ok(Message::Text(ok))) if ok.as_str().starts_with("40") => {}
                other => return Err(format!("{url}: expected the CONNECT answer, got {other:?}")),
            }
            ws.sio = Some(crate::sio::Sio::default());
        }
        if ws.sockjs {
            match ws.inner.next().await {
                Some(Ok(Message::Text(open))) if open.as_str() == "o" => {}
                other => return Err(format!("{url}: expected SockJS `o`, got {other:?}")),
            }
        }
        if let Some(credentials) = &self.credentials {
            if credentials.place == TokenIn::Frame {
                let frame = format!("auth {}", credentials.token(n));
                ws.send(Message::text(frame))
                    .await
                    .map_err(|err| format!("{url}: sending `auth`: {err}"))?;
            }
        }
        Ok(ws)
    }
}

/// Opens `count` connections, `parallel` at a time, spread round-robin over `targets`,
/// ticking `progress` for each.
pub async fn connect_many(
    targets: &[Target],
    count: usize,
    parallel: usize,
    progress: &ProgressBar,
) -> Result<Vec<Ws>, String> {
    let results: Vec<Result<Ws, String>> = stream::iter(0..count)
        .map(|n| {
            let target = &targets[n % targets.len()];
            async move {
                let ws = target.connect(n).await;
                progress.inc(1);
                ws
            }
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}
