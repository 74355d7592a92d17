//! Opening many WebSocket connections fast: bounded concurrency, and several 127.0.0.x
//! source addresses so that 10,000+ connections to one port never run out of ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::stream::{self, StreamExt};
use indicatif::ProgressBar;
use tokio::net::{lookup_host, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// The read buffer of each client connection. tungstenite zero-fills its whole read
/// buffer's spare room before every read (128 KiB by default): at paced rates, with one
/// small frame per read, that memset was 29 % of the generator's CPU (perf) and made it,
/// not the server, the bottleneck. A small buffer still grows for large messages.
const READ_BUFFER: usize = 8 * 1024;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect, and from which source addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://host:port/path`.
    pub url: String,
    /// The resolved server address.
    pub addr: SocketAddr,
    /// How many 127.0.0.x source addresses to spread over (1 = the OS's choice).
    pub sources: u8,
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
        })
    }

    /// Opens connection number `n`.
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
        let (ws, _) = client_async_with_config(self.url.as_str(), stream, Some(config))
            .await
            .map_err(|err| format!("websocket handshake: {err}"))?;
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
