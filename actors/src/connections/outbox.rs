//! The outbox: the bounded queue of frames waiting for one slow client, and the
//! slow-consumer policy that keeps it bounded.
//!
//! A transport puts every frame for its client here and its writer (a response body, a
//! SockJS receiver) takes them out as the socket has room. The queue holds at most
//! `outbound_queue` frames and `outbound_queue_bytes` bytes; what happens beyond depends
//! on the [`SlowConsumerPolicy`]: under `Close`, [`Outbox::push`] refuses with
//! [`TransportError::Full`] and the connection is closed with 4001; under `DropOldest`
//! the oldest frames make room and the next [`Outbox::pop`] hands out a
//! `messages_dropped` notice before the frames that follow the gap. Either way a client
//! that stopped reading costs at most the bound, never more.

use std::collections::VecDeque;

use bytestring::ByteString;

use crate::config::{Limits, SlowConsumerPolicy};
use crate::protocol::messages_dropped_frame;
use crate::transport::TransportError;

/// The frames queued for one client; see the module docs.
#[derive(Debug)]
pub struct Outbox {
    frames: VecDeque<ByteString>,
    bytes: usize,
    dropped: u64,
    max_frames: usize,
    max_bytes: usize,
    policy: SlowConsumerPolicy,
}

impl Outbox {
    /// An empty outbox bounded by `limits` (`outbound_queue`, `outbound_queue_bytes`,
    /// `slow_consumer`).
    pub fn new(limits: &Limits) -> Outbox {
        Outbox::with_bounds(
            limits.outbound_queue,
            limits.outbound_queue_bytes,
            limits.slow_consumer,
        )
    }

    /// An empty outbox holding at most `max_frames` frames and `max_bytes` bytes (a
    /// single larger frame is still taken into an empty outbox).
    pub fn with_bounds(max_frames: usize, max_bytes: usize, policy: SlowConsumerPolicy) -> Outbox {
        Outbox {
            // Grows on demand: an idle connection's outbox holds no allocation.
            frames: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            policy,
        }
    }

    fn has_room_for(&self, len: usize) -> bool {
        self.frames.is_empty()
            || (self.frames.len() < self.max_frames && self.bytes + len <= self.max_bytes)
    }

    /// Queues a frame. When the outbox is full, `Close` refuses with
    /// [`TransportError::Full`] (the frame is not queued); `DropOldest` drops the oldest
    /// frames until it fits, and counts them for the notice.
    pub fn push(&mut self, frame: ByteString) -> Result<(), TransportError> {
        if !self.has_room_for(frame.len()) {
            match self.policy {
                SlowConsumerPolicy::Close => {
                    crate::metrics::METRICS.slow_consumer_closes.inc();
                    return Err(TransportError::Full);
                }
                SlowConsumerPolicy::DropOldest => {
                    while !self.has_room_for(frame.len()) {
                        let Some(oldest) = self.frames.pop_front() else {
                            break;
                        };
                        self.bytes -= oldest.len();
                        self.dropped += 1;
                        crate::metrics::METRICS.frames_dropped.inc();
                    }
                }
            }
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Ok(())
    }

    /// Counts `dropped` frames that were dropped before they reached the outbox (e.g. on
    /// their way to it): the next notice includes them.
    pub fn note_dropped(&mut self, dropped: u64) {
        self.dropped += dropped;
        crate::metrics::METRICS.frames_dropped.inc_by(dropped);
    }

    /// Takes the next frame for the client: the `messages_dropped` notice first when
    /// frames were dropped since the last one, then the queued frames in order.
    pub fn pop(&mut self) -> Option<ByteString> {
        if self.dropped > 0 {
            let notice = messages_dropped_frame(self.dropped);
            self.dropped = 0;
            return Some(notice);
        }
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        if self.frames.is_empty() && self.frames.capacity() > 64 {
            // A burst is over: give the memory back rather than keep it per connection.
            self.frames = VecDeque::new();
        }
        Some(frame)
    }

    /// Whether nothing waits (no frame, no notice).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.dropped == 0
    }

    /// Frames waiting (the notice not counted).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Bytes of the frames waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops everything queued (e.g. for a slow consumer being closed: what it did not
    /// take it will not take).
    pub fn clear(&mut self) {
        self.frames = VecDeque::new();
        self.bytes = 0;
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> ByteString {
        ByteString::from(format!("channel c {n:04}"))
    }

    fn drain(outbox: &mut Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop())
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn close_policy_refuses_beyond_the_frame_bound() {
        let mut outbox = Outbox::with_bounds(3, usize::MAX, SlowConsumerPolicy::Close);
        for n in 0..3 {
            outbox.push(frame(n)).unwrap();
        }
        assert_eq!(outbox.push(frame(3)), Err(TransportError::Full));
        assert_eq!(outbox.len(), 3);
        assert_eq!(
            drain(&mut outbox),
            ["channel c 0000", "channel c 0001", "channel c 0002"]
        );
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn close_policy_refuses_beyond_the_byte_bound_but_takes_one_big_frame() {
        let mut outbox = Outbox::with_bounds(100, 20, SlowConsumerPolicy::Close);
        outbox.push(ByteString::from("x".repeat(50))).unwrap();
        assert_eq!(outbox.push(frame(1)), Err(TransportError::Full));
        drain(&mut outbox);
        outbox.push(frame(1)).unwrap();
        assert_eq!(outbox.push(frame(2)), Err(TransportError::Full));
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_announces_the_gap_once() {
        let mut outbox = Outbox::with_bounds(2, usize::MAX, SlowConsumerPolicy::DropOldest);
        for n in 0..5 {
            outbox.push(frame(n)).unwrap();
        }
        let out = drain(&mut outbox);
        assert_eq!(out.len(), 3);
        assert!(
            out[0].starts_with(r#"error {"code":"messages_dropped""#),
            "{}",
            out[0]
        );
        assert!(out[0].contains(r#""dropped":3"#), "{}", out[0]);
        assert_eq!(&out[1..], ["channel c 0003", "channel c 0004"]);
        assert!(outbox.is_empty());
        outbox.push(frame(5)).unwrap();
        assert_eq!(drain(&mut outbox), ["channel c 0005"]);
    }

    #[test]
    fn drop_oldest_respects_the_byte_bound() {
        let mut outbox = Outbox::with_bounds(100, 30, SlowConsumerPolicy::DropOldest);
        for n in 0..10 {
            outbox.push(frame(n)).unwrap();
        }
        assert!(outbox.bytes() <= 30);
        assert_eq!(outbox.len(), 2);
    }
}
