//! One WebSocket, both halves, with no task or channel between a connection and its
//! socket: the raw WebSocket transport's engine.
//!
//! The outbound half is an [`Outbox`] shared (on the connection's thread) by the
//! transport, which pushes frames into it, and the HTTP response body ([`SocketBody`]),
//! which actix-http polls when the socket has room: the body encodes every queued frame
//! into one buffer per poll and wakes once per batch, so a burst to a subscriber is one
//! allocation and one write, not one channel hop and one wake per frame. (The first
//! version queued frames through a tokio channel to a writer task, which awaited
//! `actix_ws::Session::text` into actix-ws's own channel of 32 before its body encoded
//! them: two hops, two wakes and an allocation per frame, plus a task and two channels per
//! idle connection.)
//!
//! The inbound half ([`read`]) decodes the request payload with actix-http's WebSocket
//! codec, joins continuation frames, and hands each message to a callback.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use comet_actors::{CloseCode, Outbox, TransportError};
use futures::StreamExt;

/// Most bytes one poll of the body encodes: a batch this large goes out before the next.
const MAX_CHUNK: usize = 64 * 1024;

/// What the transport and the body share.
struct State {
    outbox: Outbox,
    /// Pong payloads owed to the client (at most one: a newer ping replaces it).
    pong: Option<Bytes>,
    ping: bool,
    closing: Option<CloseCode>,
    /// The body is done (close frame out) or gone (the client left).
    finished: bool,
    waker: Option<Waker>,
}

impl State {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// The connection's handle on the outbound half.
pub(crate) struct SocketWriter(Rc<RefCell<State>>);

/// The response body that writes the socket; actix-http polls it.
pub(crate) struct SocketBody {
    state: Rc<RefCell<State>>,
    codec: Codec,
    done: bool,
}

/// A socket's outbound half: the writer for the transport, the body for the response.
pub(crate) fn outbound(outbox: Outbox) -> (SocketWriter, SocketBody) {
    let state = Rc::new(RefCell::new(State {
        outbox,
        pong: None,
        ping: false,
        closing: None,
        finished: false,
        waker: None,
    }));
    (
        SocketWriter(state.clone()),
        SocketBody {
            state,
            codec: Codec::new(),
            done: false,
        },
    )
}

impl SocketWriter {
    /// Queues a text frame (see [`Outbox::push`] for a full queue).
    pub(crate) fn send(&self, frame: ByteString) -> Result<(), TransportError> {
        let mut state = self.0.borrow_mut();
        if state.finished || state.closing.is_some() {
            return Err(TransportError::Closed);
        }
        state.outbox.push(frame)?;
        state.wake();
        Ok(())
    }

    /// Queues a ping (dropped if the socket is closing).
    pub(crate) fn ping(&self) {
        let mut state = self.0.borrow_mut();
        if state.closing.is_none() {
            state.ping = true;
            state.wake();
        }
    }

    /// Queues the answer to a client's ping.
    pub(crate) fn pong(&self, payload: Bytes) {
        let mut state = self.0.borrow_mut();
        if state.closing.is_none() {
            state.pong = Some(payload);
            state.wake();
        }
    }

    /// Closes the socket with `code` once what is queued went out; a slow consumer's
    /// queue is dropped, it gets the close frame next. Later sends fail with `Closed`.
    pub(crate) fn close(&self, code: CloseCode) {
        let mut state = self.0.borrow_mut();
        if state.closing.is_some() || state.finished {
            return;
        }
        if code == CloseCode::SlowConsumer {
            state.outbox.clear();
        }
        state.closing = Some(code);
        state.wake();
    }

    /// A second handle on the same socket, for the reader (which answers pings).
    pub(crate) fn clone_handle(&self) -> SocketWriter {
        SocketWriter(self.0.clone())
    }
}

fn encode(codec: &mut Codec, message: Message, buf: &mut BytesMut) -> io::Result<()> {
    codec
        .encode(message, buf)
        .map_err(|err| io::Error::other(err.to_string()))
}

impl MessageBody for SocketBody {
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
        let mut state = this.state.borrow_mut();
        // Sized for what waits, so a batch is one allocation.
        let want = (state.outbox.bytes() + 10 * state.outbox.len() + 256).min(MAX_CHUNK + 1024);
        let mut buf = BytesMut::new();
        if state.pong.is_some() || state.ping || !state.outbox.is_empty() || state.closing.is_some()
        {
            buf.reserve(want);
        }
        if let Some(payload) = state.pong.take() {
            encode(&mut this.codec, Message::Pong(payload), &mut buf)?;
        }
        if std::mem::take(&mut state.ping) {
            encode(&mut this.codec, Message::Ping(Bytes::new()), &mut buf)?;
        }
        while buf.len() < MAX_CHUNK {
            let Some(frame) = state.outbox.pop() else {
                break;
            };
            encode(&mut this.codec, Message::Text(frame), &mut buf)?;
        }
        if let (Some(code), true) = (state.closing, state.outbox.is_empty()) {
            let reason = CloseReason {
                code: code.code().into(),
                description: Some(code.reason().to_owned()),
            };
            encode(&mut this.codec, Message::Close(Some(reason)), &mut buf)?;
            this.done = true;
            state.finished = true;
        }
        if !buf.is_empty() {
            return Poll::Ready(Some(Ok(buf.freeze())));
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for SocketBody {
    fn drop(&mut self) {
        // The client is gone (or the close went out): later sends fail with `Closed`.
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.finished = true;
            state.outbox.clear();
            state.waker = None;
        }
    }
}

/// A message from the client, continuations joined.
pub(crate) enum Incoming {
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
pub(crate) enum ReadEnd {
    /// The client closed (close frame, or end of stream).
    Closed,
    /// A message exceeded `cap`.
    Overflow,
    /// The stream broke or broke the protocol.
    Error(String),
}

/// Reads the client's messages from `payload`, none larger than `cap` bytes (a single
/// frame or joined continuations), handing each to `on_message`, until the client closes
/// or breaks the protocol.
pub(crate) async fn read(
    mut payload: actix_web::web::Payload,
    cap: usize,
    mut on_message: impl FnMut(Incoming),
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
            match frame {
                Frame::Text(bytes) => match ByteString::try_from(bytes) {
                    Ok(text) => on_message(Incoming::Text(text)),
                    Err(_) => return ReadEnd::Error("text frame is not UTF-8".into()),
                },
                Frame::Binary(bytes) => on_message(Incoming::Binary(bytes)),
                Frame::Ping(bytes) => on_message(Incoming::Ping(bytes)),
                Frame::Pong(_) => on_message(Incoming::Pong),
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
                    if last {
                        if let Some((text, joined)) = partial.take() {
                            let bytes = joined.freeze();
                            if !text {
                                on_message(Incoming::Binary(bytes));
                            } else {
                                match ByteString::try_from(bytes) {
                                    Ok(text) => on_message(Incoming::Text(text)),
                                    Err(_) => {
                                        return ReadEnd::Error("text frame is not UTF-8".into())
                                    }
                                }
                            }
                        }
                    }
                }
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
