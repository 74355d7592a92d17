//! The raw WebSocket transport at `<scope>/websocket` (the same path SockJS serves its raw
//! WebSocket on), built on `actix-ws`.
//!
//! Each client gets a [`Connection`] actor and two small tasks on the same thread: the
//! reader turns WebSocket messages into actor messages; the writer owns the socket's
//! sending half and drains the connection's bounded outbound queue into it. A close
//! request jumps the queue, so even a client that stopped reading is closed at once.

use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError, Session};
use bytestring::ByteString;
use comet_actors::codes::ErrorCode;
use comet_actors::protocol::FrameError;
use comet_actors::{
    Close, CloseCode, Connection, Inbound, Refused, Touch, Transport, TransportClosed,
    TransportError,
};
use tokio::sync::{mpsc, oneshot};

use crate::request_info::connection_info;
use crate::Comet;

/// How long a closing connection may take to flush what it still has queued.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// What the writer task sends.
enum Outbound {
    Frame(ByteString),
    Ping,
    Pong(actix_web::web::Bytes),
}

/// The [`Transport`] face of one WebSocket.
struct WebSocketTransport {
    frames: mpsc::Sender<Outbound>,
    close: Option<oneshot::Sender<CloseCode>>,
}

impl Transport for WebSocketTransport {
    fn send(&mut self, frame: ByteString) -> Result<(), TransportError> {
        self.frames
            .try_send(Outbound::Frame(frame))
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => TransportError::Full,
                mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
            })
    }

    fn heartbeat(&mut self) {
        // A full queue already tells the client is busy; a missed ping is harmless.
        let _ = self.frames.try_send(Outbound::Ping);
    }

    fn close(&mut self, code: CloseCode) {
        if let Some(close) = self.close.take() {
            let _ = close.send(code);
        }
    }

    fn name(&self) -> &'static str {
        "websocket"
    }
}

/// The largest WebSocket message read at all. Frames between the protocol's
/// `max_frame_bytes` and this get a `too_large` error frame and the connection lives on;
/// beyond it, reading would cost memory, so the connection is closed with 1009.
fn transport_cap(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(1024 * 1024)
}

/// `GET <scope>/websocket`: upgrades to a WebSocket and starts its [`Connection`].
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    comet: web::Data<Comet>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let node = comet.node().clone();
    let limits = &node.config().limits;
    let cap = transport_cap(limits.max_frame_bytes);
    let (frames, frames_rx) = mpsc::channel(limits.outbound_queue.max(1));
    let (close, close_rx) = oneshot::channel();
    let info = connection_info(
        &req,
        node.next_connection_id(),
        "websocket",
        comet.settings().trust_proxy_headers,
    );
    let transport = WebSocketTransport {
        frames: frames.clone(),
        close: Some(close),
    };
    let connection = Connection::new(node, info, Box::new(transport)).start();
    let stream = stream
        .max_frame_size(cap)
        .aggregate_continuations()
        .max_continuation_size(cap);
    actix_web::rt::spawn(write(session, frames_rx, close_rx));
    actix_web::rt::spawn(read(stream, connection, frames));
    Ok(response)
}

/// Reads client messages into the connection actor until the socket ends.
async fn read(
    mut stream: actix_ws::AggregatedMessageStream,
    connection: Addr<Connection>,
    frames: mpsc::Sender<Outbound>,
) {
    while let Some(message) = stream.recv().await {
        match message {
            Ok(AggregatedMessage::Text(text)) => connection.do_send(Inbound(text)),
            Ok(AggregatedMessage::Binary(bytes)) => match ByteString::try_from(bytes) {
                Ok(text) => connection.do_send(Inbound(text)),
                Err(_) => connection.do_send(Refused(FrameError::new(
                    ErrorCode::BadFrame,
                    "binary frames must hold UTF-8 text",
                ))),
            },
            Ok(AggregatedMessage::Ping(bytes)) => {
                connection.do_send(Touch);
                let _ = frames.try_send(Outbound::Pong(bytes));
            }
            Ok(AggregatedMessage::Pong(_)) => connection.do_send(Touch),
            Ok(AggregatedMessage::Close(_)) => break,
            Err(ProtocolError::Overflow) => {
                log::info!("websocket: a client sent a frame over the hard cap; closing");
                connection.do_send(Close(CloseCode::MessageTooBig));
                break;
            }
            Err(err) => {
                log::debug!("websocket: protocol error, closing: {err}");
                break;
            }
        }
    }
    connection.do_send(TransportClosed);
}

/// Owns the sending half of the socket: forwards queued frames until closed.
async fn write(
    mut session: Session,
    mut frames: mpsc::Receiver<Outbound>,
    mut close: oneshot::Receiver<CloseCode>,
) {
    loop {
        let next = tokio::select! {
            biased;
            code = &mut close => return finish(session, frames, code.unwrap_or(CloseCode::Normal)).await,
            next = frames.recv() => next,
        };
        let Some(outbound) = next else {
            // The connection is gone without a close request (its actor stopped).
            let _ = session.close(None).await;
            return;
        };
        tokio::select! {
            biased;
            code = &mut close => return finish(session, frames, code.unwrap_or(CloseCode::Normal)).await,
            sent = forward(&mut session, outbound) => if sent.is_err() { return },
        }
    }
}

async fn forward(session: &mut Session, outbound: Outbound) -> Result<(), actix_ws::Closed> {
    match outbound {
        Outbound::Frame(frame) => session.text(frame).await,
        Outbound::Ping => session.ping(b"").await,
        Outbound::Pong(bytes) => session.pong(&bytes).await,
    }
}

/// Flushes what is queued (briefly; not at all for a slow consumer) and sends the close.
async fn finish(mut session: Session, mut frames: mpsc::Receiver<Outbound>, code: CloseCode) {
    let flush = async {
        if code != CloseCode::SlowConsumer {
            while let Ok(outbound) = frames.try_recv() {
                if forward(&mut session, outbound).await.is_err() {
                    return false;
                }
            }
        }
        true
    };
    if tokio::time::timeout(CLOSE_FLUSH, flush)
        .await
        .unwrap_or(false)
    {
        let reason = CloseReason {
            code: code.code().into(),
            description: Some(code.reason().to_owned()),
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, session.close(Some(reason))).await;
    }
    // Dropping the session ends the response body, which ends the TCP connection.
}
