//! What this process holds now, counted for `info` and the metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What this process holds now: its connections by transport, and its channels with
/// their local subscribers (see [`Node::census`](crate::Node::census)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Connections by transport name (`websocket`, `xhr-streaming`, …).
    pub transports: BTreeMap<String, u64>,
    /// Channels with subscribers here, each with their number.
    pub channels: HashMap<Arc<str>, usize>,
}

impl Census {
    /// Connections in all.
    pub fn connections(&self) -> u64 {
        self.transports.values().sum()
    }

    /// Subscriptions in all (a connection on 3 channels counts 3).
    pub fn subscriptions(&self) -> u64 {
        self.channels.values().map(|&count| count as u64).sum()
    }
}
