//! The actor system of comet, with no HTTP in it: the wire protocol, one actor per
//! connection, the channel registries, the hub bridge, the action queue and its workers.
//!
//! The `comet` crate puts transports (WebSocket, SockJS) on actix-web in front of these;
//! anything else that can carry text frames can too: make an [`Outlet`], start a
//! [`Connection`] with it, hand the client's frames to the connection ([`Inbound`]) and
//! write what [`Outlet::drain`] gives.
//!
//! # Layout
//!
//! Folders by concern; imports run one way, from the connection down to the hub (the
//! lower part defines the messages it sends up, the upper part handles them), and
//! `start.rs` wires the actors from above.
//!
//! | where | what it holds |
//! | --- | --- |
//! | `protocol/` | jii's text frames: parse (`mod.rs`), format (`format.rs`), errors |
//! | `codes.rs` | the one table of error codes and close codes |
//! | `auth/` | who may do what: [`Identity`], tokens, hooks, namespaces, rate limits, [`Security`] |
//! | `config.rs` | every limit and timeout, with defaults |
//! | `connections/connection.rs` | [`Connection`]: one actor per client |
//! | `connections/outlet.rs` | [`Outlet`]: a connection's bounded way out, which its transport drains |
//! | `connections/outbox.rs` | [`Outbox`]: the bounded frame queue inside it, and its slow-consumer policy |
//! | `connections/info.rs` | [`ConnectionId`], [`ConnectionInfo`]: who a connection is |
//! | `connections/directory.rs` | [`Directory`]: the process's connections, their events, close-all |
//! | `channels/channel_registry.rs` | [`ChannelRegistry`]: channel → local subscribers, one per thread |
//! | `hub/` | the [`Hub`] trait, [`MemoryHub`], [`RedisHub`], how things are named in it |
//! | `hub/bridge.rs` | [`HubBridge`]: the process's link to the hub: subscriptions, routing |
//! | `hub/process_message.rs` | [`ProcessMessage`]: messages for one connection, routed to its process |
//! | `actions/action.rs` | [`Action`], [`ActionResult`], [`Router`]: what handlers see |
//! | `actions/queue/` | the [`Queue`] trait, [`MemoryQueue`], [`RedisQueue`] (its scripts apart) |
//! | `actions/worker_supervisor.rs` | [`WorkerSupervisor`]: starts the workers, takes calls for them, drains them |
//! | `actions/action_worker.rs` | [`ActionWorker`]: runs one call at a time and answers it |
//! | `redis_link.rs` | what the Redis hub and queue share: pool, backoff, setup errors |
//! | `transport.rs` | [`TransportError`]: what writing to a client may answer |
//! | `node.rs` | [`Node`]: one process, and the server API |
//! | `cluster/` | the process roster (heartbeats on `<prefix>processes`), cluster-wide `channels`, per-user subscribe |
//! | `metrics.rs` | the process's Prometheus metrics (one relaxed add per fan-out) |
//! | `health.rs` | [`Node::health`]: whether the hub and the queue answer (readiness) |
//! | `start.rs` | [`Node::start`]: the wiring of a process's actors |
//!
//! # How a message travels
//!
//! A client's `channel test hi` reaches its [`Connection`], which publishes on the hub.
//! The hub delivers it to the [`HubBridge`] of every process subscribed to `test`; each
//! bridge formats the frame once and hands it to the [`ChannelRegistry`] of every thread
//! with subscribers, which writes it into each subscribed connection's [`Outlet`].
//!
//! An `action site/test {…}` is pushed on the queue, and a "queue updated" notice goes
//! out on the hub. The [`WorkerSupervisor`] of a process serving `site/test` takes calls
//! for its idle [`ActionWorker`]s, each of which runs the handler and sends the answer to
//! the caller's process, whose bridge hands it to the caller's connection.

#![warn(missing_docs)]

pub mod actions;
pub mod auth;
pub mod channels;
pub mod cluster;
pub mod codes;
pub mod config;
pub mod connections;
pub mod health;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod redis_link;
mod start;
pub mod transport;

pub use actions::action::{handler_fn, Action, ActionError, ActionHandler, ActionResult, Router};
pub use actions::action_worker::ActionWorker;
pub use actions::queue::{
    ActionCall, Claimed, MemoryQueue, Popped, Queue, QueueError, RedisQueue, Reply,
};
pub use actions::worker_supervisor::WorkerSupervisor;
pub use auth::{Identity, Security};
pub use channels::channel_registry::{ChannelRegistry, LocalRegistry, SubscriptionSettled};
pub use codes::{CloseCode, ErrorCode};
pub use config::{Limits, NodeConfig, RedisConfig, SlowConsumerPolicy};
pub use connections::connection::{Connection, Inbound, Refused, TransportClosed};
pub use connections::directory::{Close, ConnectionEvent, Directory};
pub use connections::info::{ConnectionId, ConnectionInfo};
pub use connections::outbox::Outbox;
pub use connections::outlet::{Drained, Out, Outlet};
pub use hub::bridge::{ChannelMessage, HubBridge, ListenerId};
pub use hub::presence::{Presence, PresenceEntry, PresenceStats};
pub use hub::process_message::ProcessMessage;
pub use hub::{Hub, HubError, HubMessage, MemoryBroker, MemoryHub, RedisClusterHub, RedisHub};
pub use node::{Node, NodeError, Payload};
pub use redis_link::RedisSetupError;
pub use transport::TransportError;
