//! The one WebSocket engine, for every framing: comet's raw jii frames at
//! `<scope>/websocket`, SockJS's `o`/`a[…]`/`h`/`c[…]` at
//! `<scope>/<server>/<session>/websocket`, and whatever comes next (a [`Framing`] is a
//! small file).
//!
//! **Outbound**, nothing stands between a connection and its socket but its [`Outlet`]:
//! the response body ([`SocketBody`]), which actix-http polls when the socket has room,
//! drains every frame queued in the outlet, has the framing encode them (raw: one
//! WebSocket message per frame; SockJS: one `a[…]` message for the whole batch) into one
//! buffer, and registers to be woken when more comes. A burst to a subscriber is one
//! allocation and one write, not a channel hop and a wake per frame; and an idle
//! connection holds no task and no channel.
//!
//! **Inbound**, one task per socket ([`read`]) decodes the request payload with
//! actix-http's WebSocket codec, joins continuation frames, and hands each message to the
//! framing to split into the application's messages. The same rules hold for every
//! framing:
//!
//! | the client sends | the server |
//! | --- | --- |
//! | a text message | hands it to the framing (SockJS: a JSON string or array of them; broken JSON closes with 3000 `Broken framing.`) |
//! | a binary message of UTF-8 text | reads it as text |
//! | a binary message that is not UTF-8 | answers `error {"code":"bad_frame",…}`, and lives on |
//! | a text message that is not UTF-8 | closes with 1007 |
//! | a message over the transport cap (`Limits::transport_cap`) | closes with 1009 |
//! | a ping / a pong | answers the ping; either shows the client is alive |

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::codes::ErrorCode;
use comet_actors::protocol::FrameError;
use comet_actors::{CloseCode, Drained, Limits, Out, Outlet};
use futures::StreamExt;

use super::service::{SessionHandler, SessionSink, SockJsService};

/// Most bytes one poll of the body encodes: a batch this large goes out before the next.
const MAX_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The frames of one drain. A poll drains, frames and empties it before it returns, so
    /// the sockets of a thread share one allocation instead of each keeping its own (a
    /// `Vec` per body held ~144 bytes per connection that ever got a frame, idle or not).
    static BATCH: RefCell<Vec<ByteString>> = const { RefCell::new(Vec::new()) };
}

/// How a transport frames comet's messages on a WebSocket, both ways. A framing is
/// cloned into the socket's writer and reader: a stateless one is a unit struct, one
/// with per-connection state (Socket.IO's) shares it behind an `Rc`.
pub(crate) trait Framing: Clone + Unpin + 'static {
    /// The transport's name, as [`ConnectionInfo::transport`](comet_actors::ConnectionInfo)
    /// shows it.
    fn name(&self) -> &'static str;

    /// What the client gets before anything else (SockJS: `o`).
    fn open(&self, _out: &mut Writer<'_>) {}

    /// A heartbeat. Every framing sends a WebSocket ping, which every client answers by
    /// itself, so a client that only listens shows it is alive.
    fn heartbeat(&self, out: &mut Writer<'_>) {
        out.ping();
    }

    /// A batch of frames, in order.
    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>);

    /// The close: the framing's own close message if it has one, then the WebSocket
    /// close frame.
    fn close(&self, code: CloseCode, out: &mut Writer<'_>) {
        out.close(code);
    }

    /// Splits a text message from the client into the application's messages, or says
    /// the client broke the framing (the socket is closed with that code).
    fn decode(
        &self,
        text: ByteString,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode>;

    /// A binary message from the client: `None` leaves it to the engine (read as text
    /// when it is UTF-8, else refused with `bad_frame`); a framing that carries binary
    /// itself (Socket.IO's attachments) takes it and answers like [`decode`](Self::decode).
    fn decode_binary(
        &self,
        _bytes: &Bytes,
        _deliver: &mut dyn FnMut(ByteString),
    ) -> Option<Result<(), CloseCode>> {
        None
    }
}

/// Encodes WebSocket messages into the buffer of one write.
pub(crate) struct Writer<'a> {
    codec: &'a mut Codec,
    buf: &'a mut BytesMut,
    failed: Option<io::Error>,
}

impl Writer<'_> {
    fn encode(&mut self, message: Message) {
        if self.failed.is_none() {
            if let Err(err) = self.codec.encode(message, self.buf) {
                self.failed = Some(io::Error::other(err.to_string()));
            }
        }
    }

    /// A text message.
    pub(crate) fn text(&mut self, text: ByteString) {
        self.encode(Message::Text(text));
    }

    /// A binary message.
    pub(crate) fn binary(&mut self, bytes: Bytes) {
        self.encode(Message::Binary(bytes));
    }

    /// A ping.
    pub(crate) fn ping(&mut self) {
        self.encode(Message::Ping(Bytes::new()));
    }

    /// The close frame with `code` and its reason.
    pub(crate) fn close(&mut self, code: CloseCode) {
        self.encode(Message::Close(Some(CloseReason {
            code: code.code().into(),
            description: Some(code.reason().to_owned()),
        })));
    }
}

/// Upgrades `req` to a WebSocket framed by `framing`, opens the application of `service`
/// on it, and starts reading. Messages are read up to `limits.transport_cap()`; the
/// outbound queue is bounded by `limits`.
pub(crate) fn serve<F: Framing>(
    req: &HttpRequest,
    payload: web::Payload,
    framing: F,
    service: &dyn SockJsService,
    limits: &Limits,
) -> actix_web::Result<HttpResponse> {
    serve_with(
        req,
        payload,
        framing,
        Outlet::new(limits),
        limits,
        |sink, req| service.open(sink, req),
    )
}

/// [`serve`] on a given outlet, with `open` opening the application (a transport that
/// needs a handle on the outlet, or its own opening, calls this).
pub(crate) fn serve_with<F: Framing>(
    req: &HttpRequest,
    payload: web::Payload,
    framing: F,
    outlet: Outlet,
    limits: &Limits,
    open: impl FnOnce(SessionSink, &HttpRequest) -> Box<dyn SessionHandler>,
) -> actix_web::Result<HttpResponse> {
    let mut response = actix_http::ws::handshake(req.head())?;
    let pongs = Rc::new(RefCell::new(Pongs::default()));
    let handler = open(SessionSink::new(outlet.clone(), framing.name()), req);
    let body = SocketBody {
        outlet: outlet.clone(),
        pongs: pongs.clone(),
        framing: framing.clone(),
        codec: Codec::new(),
        opened: false,
        done: false,
    };
    actix_web::rt::spawn(read_into(
        payload,
        limits.transport_cap(),
        framing,
        handler,
        outlet,
        pongs,
    ));
    Ok(HttpResponse::from(
        response.message_body(BoxBody::new(body))?,
    ))
}

/// What the reader owes the client besides the connection's frames: a pong (at most
/// one: a newer ping replaces it), and whether reading ended the socket (the client
/// closed, or broke the framing or a cap): then the close goes out bare, without the
/// framing's close message (SockJS asks to terminate broken framing abruptly; a client's
/// close is answered by a close frame, RFC 6455 §5.5.1).
#[derive(Default)]
struct Pongs {
    owed: Option<Bytes>,
    reader_ended: bool,
    waker: Option<Waker>,
}

/// The response body that writes the socket; actix-http polls it.
struct SocketBody<F> {
    outlet: Outlet,
    pongs: Rc<RefCell<Pongs>>,
    framing: F,
    codec: Codec,
    opened: bool,
    done: bool,
}

impl<F: Framing> MessageBody for SocketBody<F> {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let (count, bytes) = this.outlet.queued();
        let mut buf = BytesMut::new();
        let pong = this.pongs.borrow_mut().owed.take();
        if !this.opened || pong.is_some() || this.outlet.has_output() {
            // Sized for what waits, so a batch is one allocation.
            buf.reserve((bytes + 10 * count + 256).min(MAX_CHUNK + 1024));
        }
        let mut out = Writer {
            codec: &mut this.codec,
            buf: &mut buf,
            failed: None,
        };
        if !this.opened {
            this.opened = true;
            this.framing.open(&mut out);
        }
        if let Some(payload) = pong {
            out.encode(Message::Pong(payload));
        }
        let mut heartbeat = false;
        let mut close = None;
        let drained = BATCH.with(|shared| {
            // Never borrowed here already (a poll does not poll another body), but a
            // local batch would do if it were.
            let mut own = Vec::new();
            let mut shared = shared.try_borrow_mut();
            let batch = match shared.as_deref_mut() {
                Ok(batch) => batch,
                Err(_) => &mut own,
            };
            let drained = this.outlet.drain(MAX_CHUNK, |item| match item {
                Out::Heartbeat => heartbeat = true,
                Out::Frame(frame) => batch.push(frame),
                Out::Close(code) => close = Some(code),
            });
            if heartbeat {
                this.framing.heartbeat(&mut out);
            }
            if !batch.is_empty() {
                this.framing.frames(batch, &mut out);
                batch.clear();
            }
            drained
        });
        if let Some(code) = close {
            if this.pongs.borrow().reader_ended {
                out.close(code);
            } else {
                this.framing.close(code, &mut out);
            }
            this.done = true;
        }
        if let Some(err) = out.failed {
            return Poll::Ready(Some(Err(err)));
        }
        match drained {
            Drained::More => cx.waker().wake_by_ref(),
            Drained::Idle => {
                this.outlet.wait(cx.waker());
                let mut pongs = this.pongs.borrow_mut();
                if !pongs
                    .waker
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    pongs.waker = Some(cx.waker().clone());
                }
            }
            Drained::Closed => this.done = true,
        }
        if !buf.is_empty() {
            return Poll::Ready(Some(Ok(buf.freeze())));
        }
        if this.done {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<F> Drop for SocketBody<F> {
    fn drop(&mut self) {
        // The client is gone (or the close went out): later sends fail with `Closed`.
        self.outlet.finish();
    }
}

/// Reads the client's messages into `handler` until the socket ends, then tells it.
async fn read_into<F: Framing>(
    payload: web::Payload,
    cap: usize,
    framing: F,
    mut handler: Box<dyn SessionHandler>,
    outlet: Outlet,
    pongs: Rc<RefCell<Pongs>>,
) {
    let end = read(payload, cap, |message| {
        outlet.touch();
        let text = match message {
            Incoming::Text(text) => text,
            Incoming::Binary(bytes) => {
                match framing.decode_binary(&bytes, &mut |message| handler.message(message)) {
                    Some(result) => return result,
                    None => match ByteString::try_from(bytes) {
                        Ok(text) => text,
                        Err(_) => {
                            handler.refused(FrameError::new(
                                ErrorCode::BadFrame,
                                "binary frames must hold UTF-8 text",
                            ));
                            return Ok(());
                        }
                    },
                }
            }
            Incoming::Ping(payload) => {
                let mut pongs = pongs.borrow_mut();
                pongs.owed = Some(payload);
                if let Some(waker) = pongs.waker.take() {
                    waker.wake();
                }
                return Ok(());
            }
            Incoming::Pong => return Ok(()),
        };
        framing.decode(text, &mut |message| handler.message(message))
    })
    .await;
    let code = match end {
        ReadEnd::Closed => CloseCode::Normal,
        ReadEnd::Refused(code) => code,
        ReadEnd::Overflow => {
            log::info!("websocket: a client sent a message over the transport cap; closing");
            CloseCode::MessageTooBig
        }
        ReadEnd::NotUtf8 => {
            log::debug!("websocket: a text message was not UTF-8; closing");
            CloseCode::InvalidData
        }
        ReadEnd::Error(err) => {
            log::debug!("websocket: protocol error, closing: {err}");
            CloseCode::Normal
        }
    };
    // Whatever the application does with its end, the socket ends: the client gets its
    // close frame (the answer to its own, or why the server closes). A close already
    // under way (the application's) is kept, with its framing.
    if outlet.closing().is_none() {
        pongs.borrow_mut().reader_ended = true;
        outlet.close(code);
    }
    handler.closed();
}

/// A message from the client, continuations joined.
enum Incoming {
    /// A text message (valid UTF-8).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A ping, with the payload its pong must carry.
    Ping(Bytes),
    /// A pong.
    Pong,
}

/// Why reading stopped.
enum ReadEnd {
    /// The client closed (close frame, or end of stream).
    Closed,
    /// The framing refused a message: close with this code.
    Refused(CloseCode),
    /// A message exceeded the cap.
    Overflow,
    /// A text message was not UTF-8.
    NotUtf8,
    /// The stream broke or broke the protocol.
    Error(String),
}

/// Reads the client's messages from `payload`, none larger than `cap` bytes (a single
/// frame or joined continuations), handing each to `on_message`, until the client closes,
/// breaks the protocol, or `on_message` refuses one.
async fn read(
    mut payload: web::Payload,
    cap: usize,
    mut on_message: impl FnMut(Incoming) -> Result<(), CloseCode>,
) -> ReadEnd {
    let mut codec = Codec::new().max_size(cap);
    let mut buf = BytesMut::new();
    // A message being joined from continuation frames: whether it is text, and its bytes.
    let mut partial: Option<(bool, BytesMut)> = None;
    loop {
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(ProtocolError::Overflow) => return ReadEnd::Overflow,
                Err(err) => return ReadEnd::Error(err.to_string()),
            };
            let message = match frame {
                Frame::Text(bytes) => match ByteString::try_from(bytes) {
                    Ok(text) => Incoming::Text(text),
                    Err(_) => return ReadEnd::NotUtf8,
                },
                Frame::Binary(bytes) => Incoming::Binary(bytes),
                Frame::Ping(bytes) => Incoming::Ping(bytes),
                Frame::Pong(_) => Incoming::Pong,
                Frame::Close(_) => return ReadEnd::Closed,
                Frame::Continuation(item) => {
                    let (first, bytes, last) = match item {
                        Item::FirstText(b) => (Some(true), b, false),
                        Item::FirstBinary(b) => (Some(false), b, false),
                        Item::Continue(b) => (None, b, false),
                        Item::Last(b) => (None, b, true),
                    };
                    match (first, partial.as_mut()) {
                        (Some(text), None) => partial = Some((text, BytesMut::from(&bytes[..]))),
                        (None, Some((_, joined))) => {
                            if joined.len() + bytes.len() > cap {
                                return ReadEnd::Overflow;
                            }
                            joined.extend_from_slice(&bytes);
                        }
                        _ => return ReadEnd::Error("unexpected continuation frame".into()),
                    }
                    if !last {
                        continue;
                    }
                    let Some((text, joined)) = partial.take() else {
                        continue;
                    };
                    let bytes = joined.freeze();
                    if !text {
                        Incoming::Binary(bytes)
                    } else {
                        match ByteString::try_from(bytes) {
                            Ok(text) => Incoming::Text(text),
                            Err(_) => return ReadEnd::NotUtf8,
                        }
                    }
                }
            };
            if let Err(code) = on_message(message) {
                return ReadEnd::Refused(code);
            }
        }
        // Keep no buffer while idle: an idle connection should hold no memory here.
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        match payload.next().await {
            Some(Ok(bytes)) => {
                if buf.is_empty() {
                    buf = BytesMut::from(bytes);
                } else {
                    buf.extend_from_slice(&bytes);
                }
            }
            Some(Err(err)) => return ReadEnd::Error(err.to_string()),
            None => return ReadEnd::Closed,
        }
    }
}
