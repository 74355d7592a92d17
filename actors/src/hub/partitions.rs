//! Partitions of the hub on a Redis Cluster: which hash tag each channel's Redis names
//! carry, so that a channel, its history and its presence live in one slot, and the
//! slots of the partitions spread evenly over the masters.
//!
//! A channel goes to partition `p = fnv1a(name) mod N`, and every Redis name of that
//! partition carries the hash tag `{t_p}` (e.g. `comet:{a7}channel:chat`). The tags are
//! not the bare indexes: `{0}`…`{15}` hash to slots that bunch up, so on a 16-master
//! cluster half the masters would get no partition (centrifuge#554). Instead the tag of
//! partition `p` is the first short string (`t0`, `t1`, … in base 36, after the tag of
//! partition `p - 1`) whose slot lies within one of the middle of the `p`-th of `N`
//! equal slices of the 16,384 slots. As `redis-cli --cluster
//! create` (and any balanced cluster) gives each of `M` masters one contiguous range of
//! about `16384 / M` slots, every master then owns `⌊N/M⌋` or `⌈N/M⌉` partitions, for
//! every `M ≤ N` (tested below).
//!
//! The table depends only on `N`, so every process of a cluster computes the same one;
//! changing `N` (or this code) moves every channel, so all processes of a cluster must
//! run with the same `--redis-partitions`.

use std::collections::HashMap;
use std::sync::Arc;

/// Number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// Most partitions a hub may have.
pub const MAX_PARTITIONS: usize = 1024;

/// The partitions of a hub on a Redis Cluster: `N` hash tags, one per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    tags: Arc<[String]>,
    /// Tag → partition, for [`by_tag`](Self::by_tag) on every publish.
    index: Arc<HashMap<String, usize>>,
}

impl Partitions {
    /// The table for `n` partitions (1 to [`MAX_PARTITIONS`]; values outside are clamped).
    ///
    /// ```
    /// use comet_actors::hub::partitions::Partitions;
    /// let partitions = Partitions::new(16);
    /// assert_eq!(partitions.len(), 16);
    /// let p = partitions.of("chat");
    /// assert!(p < 16);
    /// // The same name always lands in the same partition, on every process.
    /// assert_eq!(Partitions::new(16).tag(p), partitions.tag(p));
    /// ```
    pub fn new(n: usize) -> Partitions {
        let n = n.clamp(1, MAX_PARTITIONS);
        let mut candidates = (0u64..).map(tag_name);
        let slice = f64::from(SLOTS) / n as f64;
        let tags: Arc<[String]> = (0..n)
            .map(|p| {
                let target = ((p as f64 + 0.5) * slice) as u16;
                // Within a slot of the middle: the ranges of a balanced cluster's
                // masters then hold whole numbers of partitions as evenly as they can,
                // and some 5,000 candidates per partition suffice.
                let tolerance = 1;
                candidates
                    .by_ref()
                    .find(|tag| slot(tag.as_bytes()).abs_diff(target) <= tolerance)
                    .unwrap_or_else(|| tag_name(p as u64))
            })
            .collect();
        let index = tags
            .iter()
            .enumerate()
            .map(|(p, tag)| (tag.clone(), p))
            .collect();
        Partitions {
            tags,
            index: Arc::new(index),
        }
    }

    /// How many partitions.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Never: there is at least one partition.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The partition of a name (a client channel's name, or a process id).
    pub fn of(&self, name: &str) -> usize {
        (fnv1a(name.as_bytes()) % self.tags.len() as u64) as usize
    }

    /// The hash tag of partition `p` (without braces).
    pub fn tag(&self, p: usize) -> &str {
        &self.tags[p % self.tags.len()]
    }

    /// The partition whose tag is `tag`, if any.
    pub fn by_tag(&self, tag: &str) -> Option<usize> {
        self.index.get(tag).copied()
    }

    /// The slot of partition `p`.
    pub fn slot(&self, p: usize) -> u16 {
        slot(self.tag(p).as_bytes())
    }
}

/// The `k`-th candidate tag: `t` and `k` in base 36.
fn tag_name(mut k: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(k % 36) as usize]);
        k /= 36;
        if k == 0 {
            break;
        }
    }
    digits.push(b't');
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// 64-bit FNV-1a: small, stable across versions and platforms (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the part between the
/// first `{` and the next `}`, when not empty) or of the whole key, mod 16,384.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

/// CRC16-CCITT (XMODEM), as Redis Cluster uses for slots.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot(b"foo{{bar}}zap"), crc16(b"{bar") % SLOTS);
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    /// Masters of a balanced cluster own contiguous, nearly equal ranges, as
    /// `redis-cli --cluster create` makes them: the partitions per master differ by at
    /// most one, for every number of masters up to the number of partitions.
    fn assert_spread(n: usize) {
        let partitions = Partitions::new(n);
        let slots: Vec<u16> = (0..n).map(|p| partitions.slot(p)).collect();
        let mut distinct = slots.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), n, "two partitions share a slot: {slots:?}");
        for masters in 1..=n {
            let mut owned = vec![0usize; masters];
            for &slot in &slots {
                // Master m owns [m*S/M, (m+1)*S/M).
                let master = (usize::from(slot) * masters) / usize::from(SLOTS);
                owned[master] += 1;
            }
            let (min, max) = (owned.iter().min(), owned.iter().max());
            assert!(
                max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                "{n} partitions on {masters} masters: {owned:?}"
            );
        }
    }

    #[test]
    fn partitions_spread_evenly_over_any_number_of_masters() {
        for n in [1, 2, 3, 7, 16, 32, 64, 128] {
            assert_spread(n);
        }
    }

    #[test]
    fn the_bare_indexes_would_not_spread() {
        // Why the table: `{0}`…`{15}` leave masters of a 16-master cluster idle.
        let mut owned = [0usize; 16];
        for p in 0..16 {
            let slot = slot(format!("{{{p}}}").as_bytes());
            owned[usize::from(slot) * 16 / usize::from(SLOTS)] += 1;
        }
        assert!(owned.iter().filter(|&&n| n == 0).count() >= 4, "{owned:?}");
    }

    #[test]
    fn the_table_of_sixteen_stays_as_it_is() {
        // Processes of one cluster must agree, across versions: a change here moves
        // every channel of every running cluster.
        let partitions = Partitions::new(16);
        let tags: Vec<&str> = (0..16).map(|p| partitions.tag(p)).collect();
        assert_eq!(tags, EXPECTED_16);
    }

    const EXPECTED_16: [&str; 16] = [
        "t48z", "t4x2", "t8yg", "t9xg", "tc0r", "tc42", "tdnm", "teom", "tk9t", "tpan", "tvzy",
        "t1497", "t18mh", "t19lh", "t1bt7", "t1hj5",
    ];

    #[test]
    fn names_go_to_stable_partitions() {
        let partitions = Partitions::new(16);
        assert_eq!(partitions.of("chat"), partitions.of("chat"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(partitions.by_tag(partitions.tag(5)), Some(5));
        assert_eq!(partitions.by_tag("nope"), None);
    }
}
