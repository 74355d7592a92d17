//! Whether this process can serve: the readiness check behind `GET <prefix>/health/ready`
//! (the HTTP side is the `comet` crate's). Liveness needs no check: a process that
//! answers HTTP runs.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::node::Node;

/// How long a backend may take to answer a readiness ping before it counts as down.
pub const PING_WITHIN: Duration = Duration::from_secs(2);

/// The answer of [`Node::health`]: whether the hub and the queue answered, each with the
/// reason when they did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `Ok` when the hub answered a ping within [`PING_WITHIN`].
    pub hub: Result<(), String>,
    /// `Ok` when the queue answered a ping within [`PING_WITHIN`].
    pub queue: Result<(), String>,
}

impl Health {
    /// Both answered.
    pub fn is_ready(&self) -> bool {
        self.hub.is_ok() && self.queue.is_ok()
    }
}

impl Node {
    /// Pings the hub and the queue (a Redis `PING` each; the in-memory ones answer at
    /// once), both at once, each bounded by [`PING_WITHIN`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
    /// # actix::System::new().block_on(async {
    /// # let node = Node::start(NodeConfig::default(), Arc::new(MemoryHub::new()),
    /// #     Arc::new(MemoryQueue::new()), Router::new());
    /// assert!(node.health().await.is_ready());
    /// # });
    /// ```
    pub async fn health(&self) -> Health {
        let hub = bounded(self.hub().ping(), "hub");
        let queue = bounded(self.queue().ping(), "queue");
        let (hub, queue) = futures::join!(hub, queue);
        Health { hub, queue }
    }
}

async fn bounded<E: std::fmt::Display>(
    ping: BoxFuture<'static, Result<(), E>>,
    what: &str,
) -> Result<(), String> {
    match tokio::time::timeout(PING_WITHIN, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "the {what} did not answer within {} ms",
            PING_WITHIN.as_millis()
        )),
    }
}
