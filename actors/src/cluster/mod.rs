//! The cluster as a whole, for the server API (`info`, `channels`, per-user subscribe):
//! the [`Roster`](roster::Roster) of each process hears the others' heartbeats and
//! answers cluster-wide questions; [`message`] is what they say on the hub.
//!
//! ```
//! # use std::sync::Arc;
//! # use comet_actors::{MemoryHub, MemoryQueue, Node, NodeConfig, Router};
//! # actix::System::new().block_on(async {
//! # let node = Node::start(NodeConfig::default(), Arc::new(MemoryHub::new()),
//! #     Arc::new(MemoryQueue::new()), Router::new());
//! let processes = node.processes().await.unwrap();
//! assert_eq!(processes[0].id, node.id());
//! assert!(node.channels(Some("chat:*")).await.unwrap().is_empty());
//! # });
//! ```

mod census;
pub mod message;
pub mod roster;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::{self, BoxFuture, FutureExt};

use crate::channels::channel_registry::ListChannels;
use crate::connections::directory::CountConnections;
use crate::hub::process_message::UserMessage;
use crate::node::{Node, NodeError};
use crate::protocol::check_name;
pub use census::Census;
pub use message::RosterLink;
pub use message::{glob_matches, ProcessInfo};
use message::{GatherChannels, Leave, ListProcesses, SetRole};

impl Node {
    /// Counts what this process holds now (for `info` and the metrics): asks the
    /// directory and each thread's channel registry once.
    pub async fn census(&self) -> Census {
        let transports = self
            .directory()
            .send(CountConnections)
            .await
            .unwrap_or_default();
        let mut channels: HashMap<Arc<str>, usize> = HashMap::new();
        for registry in self.registry_addrs() {
            // A registry whose thread has stopped holds nobody any more.
            if let Ok(listed) = registry.send(ListChannels).await {
                for (name, count) in listed {
                    *channels.entry(name).or_default() += count;
                }
            }
        }
        Census {
            transports,
            channels,
        }
    }

    /// The processes of the cluster, sorted by id: this one, counted now, and every other
    /// as its last heartbeat said (one heard within 2.5 of its heartbeat intervals).
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>, NodeError> {
        let roster = self.roster().ok_or(NodeError::Stopped)?;
        roster
            .list
            .send(ListProcesses)
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// The channels with subscribers anywhere in the cluster, each with their number
    /// (summed over processes), those matching `pattern` only (`*` for any run of
    /// characters). Asks every process over the hub and waits at most
    /// [`roster::ANSWERS_WITHIN`]; fails when the hub cannot take the question.
    pub async fn channels(
        &self,
        pattern: Option<&str>,
    ) -> Result<BTreeMap<String, u64>, NodeError> {
        let roster = self.roster().ok_or(NodeError::Stopped)?;
        let gathered = roster
            .gather
            .send(GatherChannels {
                pattern: pattern.map(str::to_owned),
            })
            .await
            .map_err(|_| NodeError::Stopped)?;
        Ok(gathered?)
    }

    /// Subscribes every connection of `user`, on every process, to `channel`, as if each
    /// had sent `subscribe` (each gets `subscribed <channel>`, or the error frame its
    /// namespace's rules give it).
    pub fn subscribe_user(
        &self,
        user: &str,
        channel: &str,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        self.to_users_on(channel, |channel| UserMessage::Subscribe {
            user: user.to_owned(),
            channel,
        })
    }

    /// Unsubscribes every connection of `user`, on every process, from `channel`.
    pub fn unsubscribe_user(
        &self,
        user: &str,
        channel: &str,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        self.to_users_on(channel, |channel| UserMessage::Unsubscribe {
            user: user.to_owned(),
            channel,
        })
    }

    /// Sends the user message `message` makes for `channel`, once its name is checked.
    fn to_users_on(
        &self,
        channel: &str,
        message: impl FnOnce(String) -> UserMessage,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        if let Err(why) = check_name(channel, self.config().limits.max_name_bytes) {
            return future::ready(Err(NodeError::BadChannel(channel.to_owned(), why))).boxed();
        }
        self.to_users(message(channel.to_owned()))
    }

    /// Names this process's role in [`processes`](Self::processes) (`server` unless
    /// told; the `comet` crate's hub server says `hub`).
    pub fn set_role(&self, role: &'static str) {
        if let Some(roster) = self.roster() {
            roster.set_role.do_send(SetRole(role));
        }
    }

    /// Tells the cluster this process leaves (part of a graceful shutdown), so that it
    /// drops out of [`processes`](Self::processes) at once.
    pub(crate) async fn leave_roster(&self) {
        if let Some(roster) = self.roster() {
            let _ = roster.leave.send(Leave).await;
        }
    }
}
