//! Starting a node: the wiring of one process's actors. It stands above every actor, so
//! that none of them needs to know how the others are made: the [`Directory`] and the
//! [`HubBridge`] come first (the node's handle reaches them), then, where
//! `listen_actions` is on, the [`WorkerSupervisor`] with the routes' handlers, told to
//! the bridge (for "queue updated" notices) and to the node (for drains). Channel
//! registries start on each worker thread as its first connection needs one.
//!
//! [`Directory`]: crate::Directory
//! [`HubBridge`]: crate::HubBridge

use std::sync::Arc;

use actix::Actor;

use crate::actions::action::Router;
use crate::actions::queue::Queue;
use crate::actions::worker_supervisor::WorkerSupervisor;
use crate::cluster::roster::Roster;
use crate::config::NodeConfig;
use crate::hub::bridge::{SetRoster, SetSupervisor};
use crate::hub::Hub;
use crate::node::{Node, SupervisorLink};

impl Node {
    /// Starts the node's actors (directory, hub bridge, and workers when
    /// `listen_actions` is on). Call it inside a running actix system.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
    ///
    /// # actix::System::new().block_on(async {
    /// let node = Node::start(
    ///     NodeConfig::default(),
    ///     Arc::new(MemoryHub::new()),
    ///     Arc::new(MemoryQueue::new()),
    ///     Router::new(),
    /// );
    /// node.publish("chat", serde_json::json!({ "text": "hello" })).await.unwrap();
    /// assert!(node.connections().await.unwrap().is_empty());
    /// # });
    /// ```
    pub fn start(
        config: NodeConfig,
        hub: Arc<dyn Hub>,
        queue: Arc<dyn Queue>,
        router: Router,
    ) -> Node {
        let listen_actions = config.listen_actions;
        let node = Node::assemble(config, hub, queue, router.routes());
        node.queue().attach(node.queue_link());
        let roster = Roster::new(node.clone()).start();
        node.bridge().do_send(SetRoster(roster.clone().recipient()));
        node.set_roster(crate::cluster::message::RosterLink {
            list: roster.clone().recipient(),
            gather: roster.clone().recipient(),
            set_role: roster.clone().recipient(),
            leave: roster.recipient(),
        });
        if listen_actions {
            let supervisor = WorkerSupervisor::new(node.clone(), router).start();
            node.bridge()
                .do_send(SetSupervisor(supervisor.clone().recipient()));
            node.set_supervisor(SupervisorLink {
                drain: supervisor.clone().recipient(),
                started: supervisor.recipient(),
            });
        }
        log::info!(
            "comet node {} started: hub {}, queue {}, listen_actions {}, routes {:?}",
            node.id(),
            node.hub_name(),
            node.queue().name(),
            listen_actions,
            node.routes(),
        );
        node
    }
}
