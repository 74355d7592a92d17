//! A receiving connection of a session over HTTP: the response of a poll or a stream.
//! The session (on its connection's thread) writes wrapped frames into a small bounded
//! channel; the other end is the response body ([`ReceiverBody`]), polled on whichever
//! thread took the request.
//!
//! A body dropped before the session ended it means the client went away (actix drops
//! the body of a response whose connection closed): the body tells its session, which
//! ends as "Connection interrupted".

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use actix::{Message, Recipient};
use actix_web::web::Bytes;
use bytestring::ByteString;
use comet_actors::TransportError;
use futures::Stream;
use tokio::sync::mpsc;

use super::frames::Framing;

/// Wrapped frames waiting between a session and its receiver; a receiver this far
/// behind leaves further messages in its connection's bounded outbound queue. One more
/// slot is kept for the end (a close frame), so that even a client that stopped reading
/// gets told why, after what it was sent.
const RECEIVER_BUFFER: usize = 16;

static NEXT_RECEIVER: AtomicU64 = AtomicU64::new(1);

/// How a receiver takes frames, and when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReceiverKind {
    /// One frame per request (xhr, jsonp).
    Polling,
    /// Frames until `response_limit` bytes went out (xhr_streaming, eventsource,
    /// htmlfile).
    Streaming,
}

impl ReceiverKind {
    /// The transport name shown to the application (e.g. in `ConnectionInfo`).
    pub(crate) fn transport_name(self, framing: &Framing) -> &'static str {
        match (self, framing) {
            (_, Framing::EventSource) => "eventsource",
            (_, Framing::HtmlFile) => "htmlfile",
            (_, Framing::Jsonp { .. }) => "jsonp-polling",
            (ReceiverKind::Streaming, _) => "xhr-streaming",
            _ => "xhr-polling",
        }
    }
}

/// The session's end of a receiving connection.
pub(crate) struct Receiver {
    pub(crate) id: u64,
    pub(crate) kind: ReceiverKind,
    framing: Framing,
    out: mpsc::Sender<ByteString>,
    written: usize,
    limit: usize,
}

/// What writing a frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The frame is on its way; the receiver takes more.
    More,
    /// The frame is on its way and the receiver is done (a poll answered, a stream at
    /// its limit): the session should end it.
    Done,
}

impl Receiver {
    /// A receiver and the channel end its response body or writer task reads.
    /// `response_limit` counts for streaming receivers only.
    pub(crate) fn new(
        kind: ReceiverKind,
        framing: Framing,
        response_limit: usize,
    ) -> (Receiver, mpsc::Receiver<ByteString>) {
        let (out, rx) = mpsc::channel(RECEIVER_BUFFER + 1);
        let limit = match kind {
            ReceiverKind::Polling => 1,
            ReceiverKind::Streaming => response_limit.max(1),
        };
        let receiver = Receiver {
            id: NEXT_RECEIVER.fetch_add(1, Ordering::Relaxed),
            kind,
            framing,
            out,
            written: 0,
            limit,
        };
        (receiver, rx)
    }

    /// The transport name shown to the application.
    pub(crate) fn transport_name(&self) -> &'static str {
        self.kind.transport_name(&self.framing)
    }

    /// Whether a frame would be taken now (the slot kept for the end does not count).
    pub(crate) fn has_room(&self) -> bool {
        self.out.capacity() > 1
    }

    /// Whether the other end is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.out.is_closed()
    }

    /// A clone of the channel, to wait for room in it.
    pub(crate) fn channel(&self) -> mpsc::Sender<ByteString> {
        self.out.clone()
    }

    /// Wraps and queues one frame.
    pub(crate) fn send(&mut self, frame: &str) -> Result<Written, TransportError> {
        if !self.has_room() && !self.out.is_closed() {
            return Err(TransportError::Full);
        }
        self.push(frame)
    }

    /// Queues the last frame (a close frame) into the slot kept for it.
    pub(crate) fn send_last(&mut self, frame: &str) -> Result<Written, TransportError> {
        self.push(frame)
    }

    fn push(&mut self, frame: &str) -> Result<Written, TransportError> {
        let data = self.framing.wrap(frame);
        let len = data.len();
        self.out.try_send(data).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => TransportError::Full,
            mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
        })?;
        self.written = self.written.saturating_add(len);
        Ok(if self.written >= self.limit {
            Written::Done
        } else {
            Written::More
        })
    }

    /// Ends the receiver (its close frame, if any, went out already): the response
    /// ends once what was queued is written.
    pub(crate) fn end(self) {
        // Dropping the sender ends the response body.
    }
}

/// To the session: a receiving connection went away before the session ended it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ReceiverClosed {
    pub(crate) receiver: u64,
}

/// The body of a polling or streaming response: an optional prelude, then what the
/// session writes, until the session ends the receiver.
pub(crate) struct ReceiverBody {
    prelude: Option<Bytes>,
    frames: mpsc::Receiver<ByteString>,
    session: Recipient<ReceiverClosed>,
    receiver: u64,
    finished: bool,
}

impl ReceiverBody {
    /// The body for receiver `receiver` of `session`.
    pub(crate) fn new(
        prelude: Option<Bytes>,
        frames: mpsc::Receiver<ByteString>,
        session: Recipient<ReceiverClosed>,
        receiver: u64,
    ) -> ReceiverBody {
        ReceiverBody {
            prelude,
            frames,
            session,
            receiver,
            finished: false,
        }
    }
}

impl Stream for ReceiverBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(prelude) = self.prelude.take() {
            return Poll::Ready(Some(Ok(prelude)));
        }
        match self.frames.poll_recv(cx) {
            Poll::Ready(Some(data)) => Poll::Ready(Some(Ok(data.into_bytes()))),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ReceiverBody {
    fn drop(&mut self) {
        if !self.finished {
            self.session.do_send(ReceiverClosed {
                receiver: self.receiver,
            });
        }
    }
}
