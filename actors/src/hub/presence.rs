//! Presence: who is subscribed to a channel, across the cluster, and the join and leave
//! events that tell its subscribers of changes.
//!
//! A channel of a namespace with `presence` has an **entry** per subscribed connection:
//! its id, its user (if any) and the `info` of its identity, kept as the JSON clients get
//! (`{"connection":…,"user":…,"info":…}`). The process that holds the connection writes
//! the entry, and removes it when the connection leaves (the
//! [`PresenceKeeper`](crate::channels::presence_keeper::PresenceKeeper) batches both). So
//! that no entry outlives a process that died, each process also writes, per channel,
//! until when it vouches for its entries, and renews that every third of `presence_ttl`:
//! whoever touches the channel after that time (another process's renewal, a read)
//! removes the dead process's entries and announces them as leaves. Entries and the
//! number of distinct users are counted as they change, so the stats are O(1) reads.
//!
//! The store is in memory for one process ([`MemoryPresence`]) and in Redis for a cluster
//! (`redis_presence.rs`), with the same rules. Join and leave events travel on the
//! channel's presence hub channel as [`encode_events`] messages, several entries in one,
//! leaves before joins.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::time::Instant;

/// One subscribed connection of a channel with presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// The connection's id.
    pub connection: String,
    /// Its user; `None` for an anonymous connection.
    pub user: Option<String>,
    /// The `info` of its token or authenticate hook (e.g. a display name); `None` if none.
    pub info: Option<Value>,
}

/// Who is in a channel: its entries by connection id (`{"clients":{…}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Presence {
    /// The entries, by connection id.
    pub clients: BTreeMap<String, PresenceEntry>,
}

/// How many are in a channel, without listing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PresenceStats {
    /// Subscribed connections.
    pub clients: u64,
    /// Distinct users among them (anonymous connections count as clients only).
    pub users: u64,
}

/// An entry as its process keeps and writes it: the JSON made once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The connection's id.
    pub connection: Arc<str>,
    /// Its user, if any (counted in the channel's users).
    pub user: Option<Arc<str>>,
    /// The entry as clients get it.
    pub json: Arc<str>,
}

impl Member {
    /// The member for `entry`.
    pub fn new(entry: &PresenceEntry) -> Member {
        let json = serde_json::to_string(entry).unwrap_or_else(|_| "{}".to_owned());
        Member {
            connection: Arc::from(entry.connection.as_str()),
            user: entry.user.as_deref().map(Arc::from),
            json: Arc::from(json),
        }
    }
}

/// Whether join and leave events go out for a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// Never (a namespace without `join_leave`).
    Off,
    /// While the channel has at most this many clients (`join_leave_max_clients`).
    UpTo(u64),
    /// Always.
    On,
}

impl Events {
    fn allow(self, clients: u64) -> bool {
        match self {
            Events::Off => false,
            Events::UpTo(max) => clients <= max,
            Events::On => true,
        }
    }
}

/// One process's changes to a channel's presence, and its renewal: leaves first, then
/// joins (an entry whose identity changed leaves and joins again).
#[derive(Debug, Clone)]
pub struct PresenceUpdate {
    /// The writing process.
    pub process: String,
    /// Entries to remove (those still there are announced as leaves).
    pub leaves: Vec<Member>,
    /// Entries to add (those not there yet are announced as joins).
    pub joins: Vec<Member>,
    /// Whether events go out.
    pub events: Events,
    /// The namespace's `presence_ttl`: the process vouches for its entries for two
    /// thirds of it from now.
    pub ttl: Duration,
    /// The process has no entry left in the channel: it stops vouching.
    pub gone: bool,
}

/// What a [`PresenceUpdate`] found and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceWritten {
    /// Whether the store still knew the process before this update. `false` after the
    /// store lost it (Redis restarted, or the process was too long silent and its entries
    /// were removed): the process writes all its entries again.
    pub existed: bool,
    /// The channel's clients now.
    pub clients: u64,
}

/// Until when a process vouches for its entries, from the time of a renewal.
pub fn vouch_for(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

/// The most entries in one event message (and so in one `join` or `leave` frame).
pub const EVENT_CHUNK: usize = 100;

/// The most bytes of entries in one event message (one larger entry goes alone).
pub const EVENT_CHUNK_BYTES: usize = 64 * 1024;

/// The event messages for `leaves` then `joins` (entries' JSON), at most
/// [`EVENT_CHUNK`] entries and [`EVENT_CHUNK_BYTES`] each: `{"leave":[…],"join":[…]}`.
pub fn encode_events(leaves: &[Arc<str>], joins: &[Arc<str>]) -> Vec<Bytes> {
    let all: Vec<(bool, &Arc<str>)> = leaves
        .iter()
        .map(|json| (false, json))
        .chain(joins.iter().map(|json| (true, json)))
        .collect();
    let mut chunks: Vec<&[(bool, &Arc<str>)]> = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (n, (_, json)) in all.iter().enumerate() {
        if n > start && (n - start == EVENT_CHUNK || bytes + json.len() > EVENT_CHUNK_BYTES) {
            chunks.push(&all[start..n]);
            (start, bytes) = (n, 0);
        }
        bytes += json.len();
    }
    if start < all.len() {
        chunks.push(&all[start..]);
    }
    chunks
        .into_iter()
        .map(|chunk| {
            let list = |join: bool| {
                let entries: Vec<&str> = chunk
                    .iter()
                    .filter(|(kind, _)| *kind == join)
                    .map(|(_, json)| json.as_ref())
                    .collect();
                entries.join(",")
            };
            Bytes::from(format!(
                "{{\"leave\":[{}],\"join\":[{}]}}",
                list(false),
                list(true)
            ))
        })
        .collect()
}

/// Joins and leaves read back from an event message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PresenceEvents {
    /// Entries that left: (connection id, entry JSON).
    pub leave: Vec<(String, String)>,
    /// Entries that joined.
    pub join: Vec<(String, String)>,
}

/// Reads an event message; `None` if it is not one.
pub fn decode_events(payload: &[u8]) -> Option<PresenceEvents> {
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow, default)]
        leave: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        join: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Connection {
        connection: String,
    }
    let message: Message<'_> = serde_json::from_slice(payload).ok()?;
    let read = |entries: Vec<&RawValue>| -> Option<Vec<(String, String)>> {
        entries
            .into_iter()
            .map(|raw| {
                let entry: Connection = serde_json::from_str(raw.get()).ok()?;
                Some((entry.connection, raw.get().to_owned()))
            })
            .collect()
    };
    Some(PresenceEvents {
        leave: read(message.leave)?,
        join: read(message.join)?,
    })
}

/// The process part of a connection id (`ab12.7` → `ab12`).
fn process_of(connection: &str) -> &str {
    connection.rsplit_once('.').map_or(connection, |(p, _)| p)
}

/// One channel's presence in memory.
#[derive(Default)]
struct ChannelPresence {
    /// connection → its entry.
    entries: HashMap<Arc<str>, Member>,
    /// user → its entries.
    users: HashMap<Arc<str>, u64>,
    /// process → until when it vouches for its entries.
    vouched: HashMap<String, Instant>,
}

impl ChannelPresence {
    fn remove(&mut self, connection: &str) -> Option<Arc<str>> {
        let Member { user, json, .. } = self.entries.remove(connection)?;
        if let Some(user) = user {
            if let Some(count) = self.users.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    self.users.remove(&user);
                }
            }
        }
        Some(json)
    }

    /// Removes the entries of processes that stopped vouching for them by `now`.
    fn reap(&mut self, now: Instant) -> Vec<Arc<str>> {
        let dead: Vec<String> = self
            .vouched
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(process, _)| process.clone())
            .collect();
        if dead.is_empty() {
            return Vec::new();
        }
        for process in &dead {
            self.vouched.remove(process);
        }
        let gone: Vec<Arc<str>> = self
            .entries
            .keys()
            .filter(|connection| dead.iter().any(|p| p == process_of(connection)))
            .cloned()
            .collect();
        gone.iter()
            .filter_map(|connection| self.remove(connection))
            .collect()
    }

    fn stats(&self) -> PresenceStats {
        PresenceStats {
            clients: self.entries.len() as u64,
            users: self.users.len() as u64,
        }
    }
}

/// The presence of every channel, in memory (the memory hub's store), on tokio's clock.
#[derive(Default)]
pub struct MemoryPresence {
    channels: HashMap<String, ChannelPresence>,
}

/// A store operation's result and the event messages it produced.
pub type WithEvents<T> = (T, Vec<Bytes>);

impl MemoryPresence {
    /// Applies an update to the channel stored under `key`.
    pub fn update(&mut self, key: &str, update: PresenceUpdate) -> WithEvents<PresenceWritten> {
        let now = Instant::now();
        let channel = self.channels.entry(key.to_owned()).or_default();
        let mut left = channel.reap(now);
        let existed = channel.vouched.contains_key(&update.process);
        if update.gone {
            channel.vouched.remove(&update.process);
        } else {
            channel
                .vouched
                .insert(update.process.clone(), now + vouch_for(update.ttl));
        }
        for member in &update.leaves {
            if channel.remove(&member.connection).is_some() {
                left.push(member.json.clone());
            }
        }
        let mut joined = Vec::new();
        for member in update.joins {
            let fresh = channel
                .entries
                .insert(member.connection.clone(), member.clone())
                .is_none();
            if fresh {
                if let Some(user) = member.user {
                    *channel.users.entry(user).or_default() += 1;
                }
                joined.push(member.json);
            }
        }
        let clients = channel.entries.len() as u64;
        let events = match update.events.allow(clients) {
            true => encode_events(&left, &joined),
            false => Vec::new(),
        };
        self.forget_if_empty(key);
        (PresenceWritten { existed, clients }, events)
    }

    /// The entries' JSON of the channel under `key`.
    pub fn read(&mut self, key: &str, events: Events) -> WithEvents<Vec<Arc<str>>> {
        let (entries, left, clients) = match self.channels.get_mut(key) {
            None => return (Vec::new(), Vec::new()),
            Some(channel) => {
                let left = channel.reap(Instant::now());
                let entries = channel.entries.values().map(|m| m.json.clone()).collect();
                (entries, left, channel.entries.len() as u64)
            }
        };
        self.forget_if_empty(key);
        (entries, self.leaves(events, clients, &left))
    }

    /// The stats of the channel under `key`.
    pub fn stats(&mut self, key: &str, events: Events) -> WithEvents<PresenceStats> {
        let (stats, left) = match self.channels.get_mut(key) {
            None => return (PresenceStats::default(), Vec::new()),
            Some(channel) => {
                let left = channel.reap(Instant::now());
                (channel.stats(), left)
            }
        };
        self.forget_if_empty(key);
        (stats, self.leaves(events, stats.clients, &left))
    }

    fn leaves(&self, events: Events, clients: u64, left: &[Arc<str>]) -> Vec<Bytes> {
        match !left.is_empty() && events.allow(clients) {
            true => encode_events(left, &[]),
            false => Vec::new(),
        }
    }

    fn forget_if_empty(&mut self, key: &str) {
        if self
            .channels
            .get(key)
            .is_some_and(|c| c.entries.is_empty() && c.vouched.is_empty())
        {
            self.channels.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(connection: &str, user: Option<&str>) -> Member {
        Member::new(&PresenceEntry {
            connection: connection.into(),
            user: user.map(Into::into),
            info: None,
        })
    }

    fn update(process: &str, leaves: Vec<Member>, joins: Vec<Member>) -> PresenceUpdate {
        PresenceUpdate {
            process: process.into(),
            leaves,
            joins,
            events: Events::On,
            ttl: Duration::from_secs(3),
            gone: false,
        }
    }

    #[test]
    fn events_round_trip_in_chunks() {
        let many: Vec<Arc<str>> = (0..150)
            .map(|n| {
                Member::new(&PresenceEntry {
                    connection: format!("p.{n}"),
                    user: None,
                    info: None,
                })
                .json
            })
            .collect();
        let messages = encode_events(&many[..10], &many[10..]);
        assert_eq!(messages.len(), 2);
        let first = decode_events(&messages[0]).unwrap();
        assert_eq!(first.leave.len(), 10);
        assert_eq!(first.join.len(), 90);
        assert_eq!(first.leave[0].0, "p.0");
        let second = decode_events(&messages[1]).unwrap();
        assert_eq!((second.leave.len(), second.join.len()), (0, 50));
        assert_eq!(decode_events(b"nope"), None);
        // Big entries: at most 64 KiB of them per message, one alone if larger.
        let big: Vec<Arc<str>> = (0..3)
            .map(|n| {
                Arc::from(format!(
                    r#"{{"connection":"p.{n}","info":"{}"}}"#,
                    "x".repeat(40_000)
                ))
            })
            .collect();
        assert_eq!(encode_events(&big, &[]).len(), 3);
        let huge: Vec<Arc<str>> = vec![Arc::from(format!(
            r#"{{"connection":"p.1","info":"{}"}}"#,
            "x".repeat(70_000)
        ))];
        assert_eq!(encode_events(&[], &huge).len(), 1);
        assert_eq!(decode_events(br#"{"join":[{"user":null}]}"#), None);
    }

    #[tokio::test(start_paused = true)]
    async fn users_count_once_and_dead_processes_are_reaped() {
        let mut store = MemoryPresence::default();
        let (written, events) = store.update(
            "k",
            update(
                "a",
                vec![],
                vec![member("a.1", Some("u")), member("a.2", Some("u"))],
            ),
        );
        assert!(!written.existed);
        assert_eq!(events.len(), 1);
        store.update("k", update("b", vec![], vec![member("b.1", None)]));
        assert_eq!(
            store.stats("k", Events::On).0,
            PresenceStats {
                clients: 3,
                users: 1
            }
        );
        // A join of an entry already there is no join.
        let (written, events) =
            store.update("k", update("a", vec![], vec![member("a.1", Some("u"))]));
        assert!(written.existed);
        assert!(events.is_empty());
        // Process a stops renewing; b renews past a's time: a's entries are reaped.
        tokio::time::advance(Duration::from_millis(1500)).await;
        store.update("k", update("b", vec![], vec![]));
        tokio::time::advance(Duration::from_millis(600)).await;
        let (written, events) = store.update("k", update("b", vec![], vec![]));
        assert!(written.existed);
        let reaped = decode_events(&events[0]).unwrap();
        assert_eq!(reaped.leave.len(), 2);
        assert_eq!(
            store.stats("k", Events::On).0,
            PresenceStats {
                clients: 1,
                users: 0
            }
        );
        // b leaves for good: nothing is kept.
        store.update(
            "k",
            PresenceUpdate {
                gone: true,
                ..update("b", vec![member("b.1", None)], vec![])
            },
        );
        assert!(store.channels.is_empty());
    }

    #[test]
    fn events_respect_the_limit() {
        let mut store = MemoryPresence::default();
        let limited = |joins| PresenceUpdate {
            events: Events::UpTo(1),
            ..update("a", vec![], joins)
        };
        assert_eq!(
            store
                .update("k", limited(vec![member("a.1", None)]))
                .1
                .len(),
            1
        );
        assert!(store
            .update("k", limited(vec![member("a.2", None)]))
            .1
            .is_empty());
    }
}
