//! The directory: the connections of this process by id. Connections register when they
//! start and leave when they stop; the directory announces both ([`ConnectionEvent`]),
//! hands each [`ProcessMessage`] to the connection it is for (answers, server-API
//! frames, server-side subscribes), carries out [`UserMessage`]s for the users whose
//! connections it holds, lists the connections, and closes them all on shutdown (and any
//! that comes later).
//!
//! A connection registers once it has an identity (at once where anonymous connections
//! are allowed; after its `auth` where they are not), so every connection it lists is
//! one that may act.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::broadcast;

use crate::codes::CloseCode;
use crate::connections::info::{ConnectionId, ConnectionInfo};
use crate::hub::process_message::{ProcessMessage, UserMessage};

/// A connection came or went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A client connected to this process.
    Added(Arc<ConnectionInfo>),
    /// A client of this process disconnected; its subscriptions are released.
    Removed(Arc<ConnectionInfo>),
    /// A connection's identity changed in band: an anonymous connection signed in, or a
    /// refreshed token brought a new expiry or info.
    Updated(Arc<ConnectionInfo>),
}

/// Close a connection with a code (server side).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Close(pub CloseCode);

struct Registered {
    info: Arc<ConnectionInfo>,
    messages: Recipient<ProcessMessage>,
    close: Recipient<Close>,
}

/// The connections of one process.
pub struct Directory {
    connections: HashMap<ConnectionId, Registered>,
    /// The connections of each user.
    users: HashMap<String, HashSet<ConnectionId>>,
    /// Connections not registered yet (authenticating): closed too on shutdown.
    pending: HashMap<ConnectionId, Recipient<Close>>,
    events: broadcast::Sender<ConnectionEvent>,
    /// Set by [`CloseAll`] (shutdown): a connection that comes later is closed at once.
    closing: Option<CloseCode>,
}

impl Directory {
    /// A directory announcing connections on `events`.
    pub fn new(events: broadcast::Sender<ConnectionEvent>) -> Directory {
        Directory {
            connections: HashMap::new(),
            users: HashMap::new(),
            pending: HashMap::new(),
            events,
            closing: None,
        }
    }
}

impl Directory {
    fn index(&mut self, info: &ConnectionInfo) {
        if let Some(user) = info.user() {
            self.users
                .entry(user.to_owned())
                .or_default()
                .insert(info.id.clone());
        }
    }

    fn unindex(&mut self, info: &ConnectionInfo) {
        if let Some(user) = info.user() {
            if let Some(ids) = self.users.get_mut(user) {
                ids.remove(&info.id);
                if ids.is_empty() {
                    self.users.remove(user);
                }
            }
        }
    }
}

impl Actor for Directory {
    type Context = Context<Self>;
}

/// From a connection: it is up.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// Who it is.
    pub info: Arc<ConnectionInfo>,
    /// Where messages for it go.
    pub messages: Recipient<ProcessMessage>,
    /// How to close it.
    pub close: Recipient<Close>,
}

impl Handler<Register> for Directory {
    type Result = ();

    fn handle(&mut self, register: Register, _: &mut Context<Self>) {
        crate::metrics::METRICS
            .connections_opened
            .with_label_values(&[&register.info.transport])
            .inc();
        log::debug!(
            "connection {} added ({}, {})",
            register.info.id,
            register.info.transport,
            register.info.ip.as_deref().unwrap_or("?")
        );
        let _ = self
            .events
            .send(ConnectionEvent::Added(register.info.clone()));
        if let Some(code) = self.closing {
            // Shutting down: reconnect elsewhere (it unregisters as it closes).
            register.close.do_send(Close(code));
        }
        self.index(&register.info);
        self.pending.remove(&register.info.id);
        self.connections.insert(
            register.info.id.clone(),
            Registered {
                info: register.info,
                messages: register.messages,
                close: register.close,
            },
        );
    }
}

/// From a connection: it is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister(pub ConnectionId);

impl Handler<Unregister> for Directory {
    type Result = ();

    fn handle(&mut self, unregister: Unregister, _: &mut Context<Self>) {
        self.pending.remove(&unregister.0);
        if let Some(connection) = self.connections.remove(&unregister.0) {
            log::debug!("connection {} removed", unregister.0);
            self.unindex(&connection.info);
            let _ = self.events.send(ConnectionEvent::Removed(connection.info));
        }
    }
}

impl Handler<ProcessMessage> for Directory {
    type Result = ();

    fn handle(&mut self, message: ProcessMessage, _: &mut Context<Self>) {
        match self.connections.get(message.to()) {
            Some(connection) => connection.messages.do_send(message),
            None => log::debug!(
                "dropped a message for connection {}, which is gone",
                message.to()
            ),
        }
    }
}

/// From a connection that is not registered yet (it authenticates first): close it too
/// on shutdown. Registering, or [`Unregister`], forgets it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    /// The connection.
    pub id: ConnectionId,
    /// How to close it.
    pub close: Recipient<Close>,
}

impl Handler<Watch> for Directory {
    type Result = ();

    fn handle(&mut self, watch: Watch, _: &mut Context<Self>) {
        if let Some(code) = self.closing {
            watch.close.do_send(Close(code));
        }
        self.pending.insert(watch.id, watch.close);
    }
}

/// From a connection: its identity changed in band.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reidentify(pub Arc<ConnectionInfo>);

impl Handler<Reidentify> for Directory {
    type Result = ();

    fn handle(&mut self, Reidentify(info): Reidentify, _: &mut Context<Self>) {
        let Some(old) = self.connections.get(&info.id).map(|c| c.info.clone()) else {
            return;
        };
        self.unindex(&old);
        self.index(&info);
        if let Some(connection) = self.connections.get_mut(&info.id) {
            connection.info = info.clone();
        }
        let _ = self.events.send(ConnectionEvent::Updated(info));
    }
}

impl Handler<UserMessage> for Directory {
    type Result = ();

    fn handle(&mut self, message: UserMessage, _: &mut Context<Self>) {
        let Some(ids) = self.users.get(message.user()) else {
            return;
        };
        for id in ids {
            let Some(connection) = self.connections.get(id) else {
                continue;
            };
            match &message {
                UserMessage::Send { frame, .. } => {
                    connection.messages.do_send(ProcessMessage::Send {
                        to: id.clone(),
                        frame: frame.clone(),
                    })
                }
                UserMessage::Disconnect { .. } => {
                    connection.close.do_send(Close(CloseCode::Normal))
                }
                UserMessage::Subscribe { channel, .. } => {
                    connection.messages.do_send(ProcessMessage::Subscribe {
                        to: id.clone(),
                        channel: channel.clone(),
                    })
                }
                UserMessage::Unsubscribe { channel, .. } => {
                    connection.messages.do_send(ProcessMessage::Unsubscribe {
                        to: id.clone(),
                        channel: channel.clone(),
                    })
                }
            }
        }
    }
}

/// Lists this process's connections, sorted by id.
#[derive(Message)]
#[rtype(result = "Vec<ConnectionInfo>")]
pub struct ListConnections;

impl Handler<ListConnections> for Directory {
    type Result = Vec<ConnectionInfo>;

    fn handle(&mut self, _: ListConnections, _: &mut Context<Self>) -> Vec<ConnectionInfo> {
        let mut all: Vec<ConnectionInfo> = self
            .connections
            .values()
            .map(|c| (*c.info).clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

/// How many connections this process holds, by transport (registered ones: those with
/// an identity, anonymous included).
#[derive(Message)]
#[rtype(result = "BTreeMap<String, u64>")]
pub struct CountConnections;

impl Handler<CountConnections> for Directory {
    type Result = MessageResult<CountConnections>;

    fn handle(&mut self, _: CountConnections, _: &mut Context<Self>) -> Self::Result {
        let mut counts = BTreeMap::new();
        for connection in self.connections.values() {
            *counts.entry(connection.info.transport.clone()).or_default() += 1;
        }
        MessageResult(counts)
    }
}

/// Closes every connection of this process with `code`, and any that comes later.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll(pub CloseCode);

impl Handler<CloseAll> for Directory {
    type Result = ();

    fn handle(&mut self, close: CloseAll, _: &mut Context<Self>) {
        self.closing = Some(close.0);
        for connection in self.connections.values() {
            connection.close.do_send(Close(close.0));
        }
        for close_pending in self.pending.values() {
            close_pending.do_send(Close(close.0));
        }
    }
}
