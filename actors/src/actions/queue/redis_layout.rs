//! Where the Redis queue keeps things: the key names of one Redis, or of a Redis Cluster.
//!
//! On one Redis the names are today's (`P queue:<route>`, `P processing:<consumer>`, …)
//! and the scripts of `redis_scripts.rs` build some of them from the prefix. On a Redis
//! Cluster a script may only touch keys of one slot, all given in `KEYS`, so every key of
//! a route carries the route's hash tag `{r:<route>}` and everything about the consumers
//! (heartbeats, the consumer set, the routes each took calls of, the reaper's claims)
//! carries `{consumers}`; see the table in `redis.rs` and `redis_cluster_scripts.rs`.

/// The key layout chosen by [`RedisQueue::new`](super::RedisQueue::new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Layout {
    /// One Redis (or a primary with replicas): today's keys.
    Single {
        /// The prefix `P`.
        prefix: String,
    },
    /// A Redis Cluster: keys tagged per route, or `{consumers}`.
    Cluster {
        /// The prefix `P`.
        prefix: String,
    },
}

impl Layout {
    /// The layout for a cluster (`cluster`) or one Redis, under `prefix`.
    pub(super) fn new(prefix: &str, cluster: bool) -> Layout {
        let prefix = prefix.to_owned();
        if cluster {
            Layout::Cluster { prefix }
        } else {
            Layout::Single { prefix }
        }
    }

    /// Whether this is the cluster layout.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Layout::Cluster { .. })
    }

    /// The prefix `P`.
    pub(super) fn prefix(&self) -> &str {
        match self {
            Layout::Single { prefix } | Layout::Cluster { prefix } => prefix,
        }
    }

    /// A key of `route`: `P<kind>:<route>` on one Redis, `P{r:<route>}<kind>` on a cluster.
    fn route_key(&self, kind: &str, route: &str) -> String {
        match self {
            Layout::Single { prefix } => format!("{prefix}{kind}:{route}"),
            Layout::Cluster { prefix } => format!("{prefix}{{r:{route}}}{kind}"),
        }
    }

    /// A key about the consumers: `P<name>` on one Redis, `P{consumers}<name>` on a cluster.
    fn consumers_key(&self, name: &str) -> String {
        match self {
            Layout::Single { prefix } => format!("{prefix}{name}"),
            Layout::Cluster { prefix } => format!("{prefix}{{consumers}}{name}"),
        }
    }

    /// The list of calls waiting for `route`.
    pub(super) fn queue(&self, route: &str) -> String {
        self.route_key("queue", route)
    }

    /// The sorted set of the processes serving `route`.
    pub(super) fn served(&self, route: &str) -> String {
        self.route_key("served", route)
    }

    /// The list of calls of `route` that `consumer` holds: one list for all routes on one
    /// Redis (`route` is not used), one per route on a cluster.
    pub(super) fn processing(&self, route: &str, consumer: &str) -> String {
        match self {
            Layout::Single { prefix } => format!("{prefix}processing:{consumer}"),
            Layout::Cluster { prefix } => format!("{prefix}{{r:{route}}}processing:{consumer}"),
        }
    }

    /// The dead-letter list for entries taken from `route`: one for all routes on one
    /// Redis, one per route on a cluster.
    pub(super) fn dead(&self, route: &str) -> String {
        match self {
            Layout::Single { prefix } => format!("{prefix}dead"),
            Layout::Cluster { .. } => self.route_key("dead", route),
        }
    }

    /// `consumer`'s heartbeat.
    pub(super) fn alive(&self, consumer: &str) -> String {
        self.consumers_key(&format!("alive:{consumer}"))
    }

    /// The set of processes that may hold taken calls.
    pub(super) fn consumers(&self) -> String {
        self.consumers_key("consumers")
    }

    /// On a cluster, the set of routes `consumer` may hold calls of.
    pub(super) fn routes(&self, consumer: &str) -> String {
        self.consumers_key(&format!("routes:{consumer}"))
    }

    /// On a cluster, the sorted set of dead consumers a reaper claimed, scored by when the
    /// claim lapses (Redis time, ms).
    pub(super) fn reaping(&self) -> String {
        self.consumers_key("reaping")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::partitions::slot;

    #[test]
    fn one_redis_keeps_todays_names() {
        let layout = Layout::new("comet:", false);
        assert_eq!(layout.queue("site/test"), "comet:queue:site/test");
        assert_eq!(layout.served("site/test"), "comet:served:site/test");
        assert_eq!(layout.processing("site/test", "c1"), "comet:processing:c1");
        assert_eq!(layout.dead("site/test"), "comet:dead");
        assert_eq!(layout.alive("c1"), "comet:alive:c1");
        assert_eq!(layout.consumers(), "comet:consumers");
    }

    #[test]
    fn on_a_cluster_a_routes_keys_share_a_slot_and_so_do_the_consumers() {
        let layout = Layout::new("comet:", true);
        assert_eq!(layout.queue("site/test"), "comet:{r:site/test}queue");
        let route = slot(layout.queue("site/test").as_bytes());
        for key in [
            layout.served("site/test"),
            layout.processing("site/test", "c1"),
            layout.dead("site/test"),
        ] {
            assert_eq!(slot(key.as_bytes()), route, "{key}");
        }
        let consumers = slot(layout.consumers().as_bytes());
        for key in [layout.alive("c1"), layout.routes("c1"), layout.reaping()] {
            assert_eq!(slot(key.as_bytes()), consumers, "{key}");
        }
    }
}
