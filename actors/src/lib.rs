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
//! | file | what it holds |
//! | --- | --- |
//! | `protocol.rs` | jii's text frames: parse, format, errors |
//! | `codes.rs` | the one table of error codes and close codes |
//! | `config.rs` | every limit and timeout, with defaults |
//! | `node.rs` | [`Node`]: one process, and the server API |
//! | `connection.rs` | [`Connection`]: one actor per client |
//! | `channel_registry.rs` | [`ChannelRegistry`]: channel → local subscribers, one per thread |
//! | `hub_bridge.rs` | [`HubBridge`]: the process's link to the hub |
//! | `worker_supervisor.rs` | [`WorkerSupervisor`]: starts the workers, takes calls for them, drains them |
//! | `action_worker.rs` | [`ActionWorker`]: runs one call at a time and answers it |
//! | `action.rs` | [`Action`], [`ActionResult`], [`Router`]: what handlers see |
//! | `hub/` | the [`Hub`] trait, [`MemoryHub`], [`RedisHub`] |
//! | `queue/` | the [`Queue`] trait, [`MemoryQueue`], [`RedisQueue`] |
//! | `redis_link.rs` | what the Redis hub and queue share: pool, backoff, setup errors |
//! | `transport.rs` | [`TransportError`]: what writing to a client may answer |
//! | `outbox.rs` | [`Outbox`]: a slow client's bounded frame queue and its policy |
//! | `outlet.rs` | [`Outlet`]: a connection's bounded way out, which its transport drains |
//! | `process_message.rs` | messages for one connection, routed to its process |
//!
//! # How a message travels
//!
//! A client's `channel test hi` reaches its [`Connection`], which publishes on the hub.
//! The hub delivers it to the [`HubBridge`] of every process subscribed to `test`; each
//! bridge formats the frame once and hands it to the [`ChannelRegistry`] of every thread
//! with subscribers, which writes it to each subscribed connection's transport.
//!
//! An `action site/test {…}` is pushed on the queue, and a "queue updated" notice goes
//! out on the hub. The [`WorkerSupervisor`] of a process serving `site/test` takes calls
//! for its idle [`ActionWorker`]s, each of which runs the handler and sends the answer to
//! the caller's process, whose bridge hands it to the caller's connection.

#![warn(missing_docs)]

pub mod action;
pub mod action_worker;
pub mod channel_registry;
pub mod codes;
pub mod config;
pub mod connection;
pub mod connection_info;
pub mod directory;
pub mod hub;
pub mod hub_bridge;
pub mod node;
pub mod outbox;
pub mod outlet;
pub mod process_message;
pub mod protocol;
pub mod queue;
pub mod redis_link;
mod start;
pub mod transport;
pub mod worker_supervisor;

pub use action::{handler_fn, Action, ActionError, ActionHandler, ActionResult, Router};
pub use action_worker::ActionWorker;
pub use channel_registry::{ChannelRegistry, LocalRegistry, SubscriptionSettled};
pub use codes::{CloseCode, ErrorCode};
pub use config::{Limits, NodeConfig, RedisConfig, SlowConsumerPolicy};
pub use connection::{Connection, Inbound, Refused, TransportClosed};
pub use connection_info::{ConnectionId, ConnectionInfo};
pub use directory::{Close, ConnectionEvent, Directory};
pub use hub::{Hub, HubError, HubMessage, MemoryBroker, MemoryHub, RedisHub};
pub use hub_bridge::{ChannelMessage, HubBridge, ListenerId};
pub use node::{Node, NodeError, Payload};
pub use outbox::Outbox;
pub use outlet::{Drained, Out, Outlet};
pub use process_message::ProcessMessage;
pub use queue::{ActionCall, Claimed, MemoryQueue, Popped, Queue, QueueError, RedisQueue, Reply};
pub use redis_link::RedisSetupError;
pub use transport::TransportError;
pub use worker_supervisor::WorkerSupervisor;
