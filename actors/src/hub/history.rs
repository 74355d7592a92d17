//! Channel history: the positions of publications, and the store that keeps the last ones
//! of each channel of a namespace with history (in memory for one process; in Redis for a
//! cluster, see `redis_history.rs`).
//!
//! A publication in such a channel gets an **offset** (1, 2, 3, … per channel) and the
//! channel's history an **epoch**, a string that changes whenever the history was lost
//! (it expired, Redis restarted without persistence, a key was flushed): a client that
//! resumes from `(offset, epoch)` learns for sure whether it missed anything. The
//! publication and its history entry are written in one step, and the message goes out
//! on the hub with its position (`<offset> <epoch>\n<payload>` on the channel's
//! positioned hub channel), so no subscriber sees a message that history does not have.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

/// Where a publication stands in its channel's history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The publication's offset (or, for a channel's position, its last one; 0 if none).
    pub offset: u64,
    /// The history's epoch.
    pub epoch: Arc<str>,
}

/// How much history a channel keeps (a namespace's `history_size` and `history_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Publications kept per channel, the newest.
    pub size: usize,
    /// How long a channel's history lives after its last publication.
    pub ttl: Duration,
}

/// One publication read back from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Its offset.
    pub offset: u64,
    /// The payload as published.
    pub payload: Bytes,
}

/// A read of a channel's history: publications oldest first, and the channel's position
/// at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Oldest first.
    pub publications: Vec<Publication>,
    /// The channel's last offset and its epoch.
    pub position: Position,
    /// The oldest offset history still holds (0 when it holds none).
    pub oldest: u64,
}

impl HistoryPage {
    /// The page as clients and the HTTP API get it:
    /// `{"publications":[{"offset","payload"}],"offset","epoch"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let publications: Vec<serde_json::Value> = self
            .publications
            .iter()
            .map(|p| {
                serde_json::json!({
                    "offset": p.offset,
                    "payload": String::from_utf8_lossy(&p.payload),
                })
            })
            .collect();
        serde_json::json!({
            "publications": publications,
            "offset": self.position.offset,
            "epoch": &*self.position.epoch,
        })
    }

    /// Whether everything published after `since` (of `epoch`) is in this page or was
    /// nothing: the same epoch, and no publication missing between `since` and the page.
    pub fn continues(&self, since: u64, epoch: &str) -> bool {
        if *self.position.epoch != *epoch || since > self.position.offset {
            return false;
        }
        if since == self.position.offset {
            return true;
        }
        self.publications
            .first()
            .is_some_and(|first| first.offset == since + 1)
            && self
                .publications
                .last()
                .is_some_and(|last| last.offset == self.position.offset)
    }
}

/// What to read: after `since` (oldest first), or else the newest; at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Publications after this offset; `None`: the newest.
    pub since: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// Encodes a positioned message for the hub: `<offset> <epoch>\n<payload>`.
pub fn encode_positioned(position: &Position, payload: &[u8]) -> Bytes {
    let offset = position.offset.to_string();
    let mut out = BytesMut::with_capacity(offset.len() + position.epoch.len() + 2 + payload.len());
    out.put_slice(offset.as_bytes());
    out.put_u8(b' ');
    out.put_slice(position.epoch.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(payload);
    out.freeze()
}

/// Decodes what [`encode_positioned`] made; the payload shares the message's bytes.
pub fn decode_positioned(message: &Bytes) -> Option<(Position, Bytes)> {
    let newline = message.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&message[..newline]).ok()?;
    let (offset, epoch) = header.split_once(' ')?;
    let offset = offset.parse().ok()?;
    (!epoch.is_empty()).then(|| {
        (
            Position {
                offset,
                epoch: Arc::from(epoch),
            },
            message.slice(newline + 1..),
        )
    })
}

/// A new epoch: 8 random hex digits.
pub fn new_epoch() -> Arc<str> {
    Arc::from(&uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// One channel's history in memory.
struct ChannelHistory {
    epoch: Arc<str>,
    offset: u64,
    entries: VecDeque<Publication>,
    expires: Instant,
}

/// The in-memory history of every channel, for the [`MemoryHub`](crate::MemoryHub): the
/// same semantics as Redis's (size, time to live, a new epoch when lost), on tokio's clock.
#[derive(Default)]
pub struct MemoryHistory {
    channels: HashMap<String, ChannelHistory>,
    /// Appends since the last sweep of expired channels.
    since_sweep: usize,
}

impl MemoryHistory {
    fn channel(&mut self, key: &str, ttl: Duration) -> &mut ChannelHistory {
        let now = Instant::now();
        let fresh = || ChannelHistory {
            epoch: new_epoch(),
            offset: 0,
            entries: VecDeque::new(),
            expires: now + ttl,
        };
        let history = self.channels.entry(key.to_owned()).or_insert_with(fresh);
        if history.expires <= now {
            *history = fresh();
        }
        history
    }

    /// Appends a publication, answering its position.
    pub fn append(&mut self, key: &str, payload: Bytes, policy: HistoryPolicy) -> Position {
        self.since_sweep += 1;
        if self.since_sweep >= 1024 {
            self.since_sweep = 0;
            let now = Instant::now();
            self.channels.retain(|_, history| history.expires > now);
        }
        let history = self.channel(key, policy.ttl);
        history.offset += 1;
        history.entries.push_back(Publication {
            offset: history.offset,
            payload,
        });
        while history.entries.len() > policy.size.max(1) {
            history.entries.pop_front();
        }
        history.expires = Instant::now() + policy.ttl;
        Position {
            offset: history.offset,
            epoch: history.epoch.clone(),
        }
    }

    /// Reads a channel's history (making its epoch if it has none, so that a position
    /// read now stays valid for the publications that follow).
    pub fn read(&mut self, key: &str, query: HistoryQuery, ttl: Duration) -> HistoryPage {
        let history = self.channel(key, ttl);
        let oldest = history.entries.front().map_or(0, |first| first.offset);
        let publications: Vec<Publication> = match query.since {
            Some(since) => history
                .entries
                .iter()
                .filter(|p| p.offset > since)
                .take(query.limit)
                .cloned()
                .collect(),
            None => {
                let skip = history.entries.len().saturating_sub(query.limit);
                history.entries.iter().skip(skip).cloned().collect()
            }
        };
        HistoryPage {
            publications,
            position: Position {
                offset: history.offset,
                epoch: history.epoch.clone(),
            },
            oldest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(size: usize, ttl_s: u64) -> HistoryPolicy {
        HistoryPolicy {
            size,
            ttl: Duration::from_secs(ttl_s),
        }
    }

    #[test]
    fn positioned_messages_round_trip() {
        let position = Position {
            offset: 42,
            epoch: Arc::from("ab12cd34"),
        };
        let encoded = encode_positioned(&position, b"hello\nworld");
        assert_eq!(
            decode_positioned(&encoded),
            Some((position, Bytes::from_static(b"hello\nworld")))
        );
        for bad in [&b"no newline"[..], b"x e\np", b"1 \np", b"1\np"] {
            assert_eq!(decode_positioned(&Bytes::copy_from_slice(bad)), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_history_keeps_the_newest_and_forgets_after_its_ttl() {
        let mut history = MemoryHistory::default();
        let first = history.append("c", Bytes::from_static(b"1"), policy(3, 10));
        assert_eq!(first.offset, 1);
        for n in 2..=5u8 {
            history.append("c", Bytes::from(vec![b'0' + n]), policy(3, 10));
        }
        let all = history.read(
            "c",
            HistoryQuery {
                since: None,
                limit: 10,
            },
            policy(3, 10).ttl,
        );
        let offsets: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [3, 4, 5]);
        assert_eq!((all.position.offset, all.oldest), (5, 3));
        assert!(all.continues(2, &first.epoch) && all.continues(5, &first.epoch));
        assert!(!all.continues(1, &first.epoch), "offset 2 is gone");
        assert!(!all.continues(4, "other"));
        let newest = history.read(
            "c",
            HistoryQuery {
                since: None,
                limit: 1,
            },
            policy(3, 10).ttl,
        );
        assert_eq!(newest.publications[0].offset, 5);
        let after = history.read(
            "c",
            HistoryQuery {
                since: Some(3),
                limit: 1,
            },
            policy(3, 10).ttl,
        );
        assert_eq!(after.publications[0].offset, 4);
        tokio::time::advance(Duration::from_secs(11)).await;
        let gone = history.read(
            "c",
            HistoryQuery {
                since: Some(5),
                limit: 10,
            },
            policy(3, 10).ttl,
        );
        assert_ne!(gone.position.epoch, first.epoch);
        assert_eq!(gone.position.offset, 0);
        assert!(!gone.continues(5, &first.epoch));
    }
}
