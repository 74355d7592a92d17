//! The roster: which processes the cluster has, from the heartbeat each writes on
//! `<prefix>processes`, and the gathering of cluster-wide answers (which channels have
//! subscribers, and how many). One per process, started with the node.
//!
//! Every `process_heartbeat` (at most 5 s) a process counts its connections and
//! subscriptions and publishes a heartbeat; a process not heard for
//! 2.5 of its own intervals is dropped (killed, or cut off from the hub), and one that
//! shuts down gracefully says that it leaves. A question for every process
//! goes out on `<prefix>processes`; each answers on the asker's `<prefix>answers:<id>`;
//! the asker waits for the processes it knows, at most [`ANSWERS_WITHIN`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use futures::channel::oneshot;

use super::census::Census;
use super::message::{
    glob_matches, ClusterMessage, GatherChannels, Leave, ListProcesses, ProcessInfo, SetRole,
};
use crate::hub::{HubError, HubMessage};
use crate::node::Node;

/// The longest a cluster-wide question waits for answers; processes that have not
/// answered by then are left out.
pub const ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// The most channels one process puts in an answer (the busiest first), so that an
/// answer stays within a few hundred KiB.
pub const MAX_ANSWER_CHANNELS: usize = 10_000;

/// The longest interval between two heartbeats of a process.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(5);

struct Peer {
    info: ProcessInfo,
    expires: Instant,
}

/// A question waiting for its answers.
struct Gathering {
    channels: BTreeMap<String, u64>,
    waiting_for: HashSet<String>,
    done: oneshot::Sender<BTreeMap<String, u64>>,
}

/// The process roster (an actor): see the module's docs.
pub struct Roster {
    node: Node,
    role: &'static str,
    started: Instant,
    every: Duration,
    peers: HashMap<String, Peer>,
    gatherings: HashMap<u64, Gathering>,
    next_query: u64,
}

impl Roster {
    /// The roster of `node`, role `server` until told otherwise ([`SetRole`]).
    pub fn new(node: Node) -> Roster {
        let every = node
            .config()
            .process_heartbeat
            .clamp(Duration::from_millis(10), MAX_HEARTBEAT);
        Roster {
            node,
            role: "server",
            started: Instant::now(),
            every,
            peers: HashMap::new(),
            gatherings: HashMap::new(),
            next_query: 1,
        }
    }

    fn me(&self, census: &Census) -> ProcessInfo {
        ProcessInfo {
            id: self.node.id().to_owned(),
            role: self.role.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            connections: census.connections(),
            subscriptions: census.subscriptions(),
        }
    }

    fn publish(&self, channel: &str, message: &ClusterMessage, ctx: &mut Context<Self>) {
        let sent = self
            .node
            .hub()
            .publish(channel, Bytes::from(message.encode()));
        ctx.spawn(
            async move {
                if let Err(err) = sent.await {
                    log::debug!("roster: cannot tell the cluster: {err}");
                }
            }
            .into_actor(self),
        );
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let node = self.node.clone();
        ctx.spawn(async move { node.census().await }.into_actor(self).map(
            |census, roster, ctx| {
                let message = ClusterMessage::Heartbeat {
                    process: roster.me(&census),
                    every_ms: roster.every.as_millis() as u64,
                };
                roster.publish(roster.node.names().processes(), &message, ctx);
            },
        ));
    }

    fn answer_channels(
        &mut self,
        from: String,
        query: u64,
        pattern: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let node = self.node.clone();
        ctx.spawn(async move { node.census().await }.into_actor(self).map(
            move |census, roster, ctx| {
                let mut matching: Vec<(Arc<str>, usize)> = census
                    .channels
                    .into_iter()
                    .filter(|(name, _)| {
                        pattern
                            .as_deref()
                            .is_none_or(|pattern| glob_matches(pattern, name))
                    })
                    .collect();
                if matching.len() > MAX_ANSWER_CHANNELS {
                    log::warn!(
                        "roster: {} channels match; answering the busiest {MAX_ANSWER_CHANNELS}",
                        matching.len()
                    );
                    matching.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
                    matching.truncate(MAX_ANSWER_CHANNELS);
                }
                let answer = ClusterMessage::ChannelsAnswer {
                    from: roster.node.id().to_owned(),
                    query,
                    channels: matching
                        .into_iter()
                        .map(|(name, count)| (name.to_string(), count as u64))
                        .collect(),
                };
                roster.publish(&roster.node.names().answers(&from), &answer, ctx);
            },
        ));
    }

    fn answered(&mut self, from: &str, query: u64, channels: BTreeMap<String, u64>) {
        let Some(gathering) = self.gatherings.get_mut(&query) else {
            return; // too late: answered already
        };
        for (name, count) in channels {
            *gathering.channels.entry(name).or_default() += count;
        }
        gathering.waiting_for.remove(from);
        if gathering.waiting_for.is_empty() {
            self.finish(query);
        }
    }

    fn finish(&mut self, query: u64) {
        if let Some(gathering) = self.gatherings.remove(&query) {
            let _ = gathering.done.send(gathering.channels);
        }
    }

    fn live_peers(&mut self) -> impl Iterator<Item = &Peer> {
        let now = Instant::now();
        self.peers.retain(|id, peer| {
            let alive = peer.expires > now;
            if !alive {
                log::info!("roster: process {id} not heard for a while: dropped");
            }
            alive
        });
        self.peers.values()
    }
}

impl Actor for Roster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if tokio::runtime::Handle::try_current().is_err() {
            // Started only by being torn down with a runtime that never ran it: no timers
            // can be made, and nobody would hear a heartbeat anyway.
            return;
        }
        let names = self.node.names();
        let hub = self.node.hub();
        let all = hub.subscribe(names.processes());
        let own = hub.subscribe(&names.answers(self.node.id()));
        // The first heartbeat once both subscriptions are made; the hub makes them again
        // by itself after a reconnection.
        ctx.wait(
            async move {
                for result in [all.await, own.await] {
                    if let Err(err) = result {
                        log::warn!("roster: cannot subscribe now ({err}); the hub retries");
                    }
                }
            }
            .into_actor(self),
        );
        self.heartbeat(ctx);
        ctx.run_interval(self.every, |roster, ctx| roster.heartbeat(ctx));
    }
}

impl Handler<HubMessage> for Roster {
    type Result = ();

    fn handle(&mut self, message: HubMessage, ctx: &mut Context<Self>) {
        let message = match ClusterMessage::decode(&message.payload) {
            Ok(message) => message,
            Err(err) => {
                log::warn!(
                    "roster: dropped an unreadable message on `{}`: {err}",
                    message.channel
                );
                return;
            }
        };
        match message {
            ClusterMessage::Heartbeat { process, every_ms } => {
                if process.id == self.node.id() {
                    return;
                }
                let every = Duration::from_millis(every_ms).min(MAX_HEARTBEAT);
                let expires = Instant::now() + every.mul_f32(2.5);
                if !self.peers.contains_key(&process.id) {
                    // Forget the expired ones first, so that restarts (new ids) do not pile
                    // up when nobody asks for the list.
                    let _ = self.live_peers().count();
                    log::info!("roster: process {} ({}) joined", process.id, process.role);
                }
                self.peers.insert(
                    process.id.clone(),
                    Peer {
                        info: process,
                        expires,
                    },
                );
            }
            ClusterMessage::Leaving { id } => {
                if self.peers.remove(&id).is_some() {
                    log::info!("roster: process {id} left");
                }
                let waiting: Vec<u64> = self.gatherings.keys().copied().collect();
                for query in waiting {
                    self.answered(&id, query, BTreeMap::new());
                }
            }
            ClusterMessage::ChannelsQuery {
                from,
                query,
                pattern,
            } => self.answer_channels(from, query, pattern, ctx),
            ClusterMessage::ChannelsAnswer {
                from,
                query,
                channels,
            } => self.answered(&from, query, channels),
        }
    }
}

impl Handler<ListProcesses> for Roster {
    type Result = ResponseActFuture<Self, Vec<ProcessInfo>>;

    fn handle(&mut self, _: ListProcesses, _: &mut Context<Self>) -> Self::Result {
        let node = self.node.clone();
        Box::pin(
            async move { node.census().await }
                .into_actor(self)
                .map(|census, roster, _| {
                    let mut all: Vec<ProcessInfo> =
                        roster.live_peers().map(|peer| peer.info.clone()).collect();
                    all.push(roster.me(&census));
                    all.sort_by(|a, b| a.id.cmp(&b.id));
                    all
                }),
        )
    }
}

impl Handler<GatherChannels> for Roster {
    type Result = ResponseFuture<Result<BTreeMap<String, u64>, HubError>>;

    fn handle(&mut self, gather: GatherChannels, ctx: &mut Context<Self>) -> Self::Result {
        let query = self.next_query;
        self.next_query += 1;
        let own = self.node.id().to_owned();
        let mut waiting_for: HashSet<String> =
            self.live_peers().map(|peer| peer.info.id.clone()).collect();
        waiting_for.insert(own.clone());
        let (done, answer) = oneshot::channel();
        self.gatherings.insert(
            query,
            Gathering {
                channels: BTreeMap::new(),
                waiting_for,
                done,
            },
        );
        ctx.run_later(ANSWERS_WITHIN, move |roster, _| roster.finish(query));
        let asked = ClusterMessage::ChannelsQuery {
            from: own,
            query,
            pattern: gather.pattern,
        };
        let sent = self
            .node
            .hub()
            .publish(self.node.names().processes(), Bytes::from(asked.encode()));
        Box::pin(async move {
            sent.await?;
            answer.await.map_err(|_| HubError::NotRunning)
        })
    }
}

impl Handler<SetRole> for Roster {
    type Result = ();

    fn handle(&mut self, SetRole(role): SetRole, _: &mut Context<Self>) {
        self.role = role;
    }
}

impl Handler<Leave> for Roster {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Leave, _: &mut Context<Self>) -> Self::Result {
        let leaving = ClusterMessage::Leaving {
            id: self.node.id().to_owned(),
        };
        let sent = self
            .node
            .hub()
            .publish(self.node.names().processes(), Bytes::from(leaving.encode()));
        Box::pin(async move {
            let _ = sent.await;
        })
    }
}
