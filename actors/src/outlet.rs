//! The outlet: a connection's [`Transport`], shared on the connection's thread by the
//! [`Connection`] and its thread's [`ChannelRegistry`](crate::ChannelRegistry).
//!
//! Fan-out is the hot path: one published message becomes one write per subscriber.
//! Going through each connection actor's mailbox (a boxed envelope, a wake and a poll per
//! subscriber) cost about as much as everything else together (profiled: `do_send`,
//! envelope drop, `malloc`/`free` were the top symbols), so the registry writes to the
//! outlet directly instead. This is safe because a registry and the connections it holds
//! live on one thread, and exact because subscribing and unsubscribing are plain calls
//! into the registry on that thread: once a connection has left a channel (and written
//! `unsubscribed`), no frame of that channel can reach its outlet.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use actix::WeakAddr;
use bytestring::ByteString;

use crate::codes::CloseCode;
use crate::connection::{Close, Connection, SubscriptionSettled};
use crate::connection_info::ConnectionId;
use crate::transport::{Transport, TransportError};

struct Inner {
    id: ConnectionId,
    transport: RefCell<Box<dyn Transport>>,
    connection: WeakAddr<Connection>,
    /// Whether the connection was told to close as a slow consumer already.
    told: Cell<bool>,
}

/// A connection's shared way out. Cheap to clone; not `Send` (it stays on its thread).
#[derive(Clone)]
pub(crate) struct Outlet(Rc<Inner>);

impl Outlet {
    /// The outlet of connection `id` (an actor at `connection`) over `transport`.
    pub(crate) fn new(
        id: ConnectionId,
        transport: Box<dyn Transport>,
        connection: WeakAddr<Connection>,
    ) -> Outlet {
        Outlet(Rc::new(Inner {
            id,
            transport: RefCell::new(transport),
            connection,
            told: Cell::new(false),
        }))
    }

    /// The connection's id.
    pub(crate) fn id(&self) -> &ConnectionId {
        &self.0.id
    }

    /// A key for this outlet, unique among live outlets.
    pub(crate) fn key(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    /// Runs `f` on the transport. Nothing that holds this borrow calls back into the
    /// registry or the connection, so it is never taken twice.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut dyn Transport) -> R) -> R {
        f(self.0.transport.borrow_mut().as_mut())
    }

    /// Writes a frame for the connection, as its registry does: a client too slow to
    /// take it gets its connection closed (4001), by a message to the connection actor,
    /// which owns its life.
    pub(crate) fn deliver(&self, frame: ByteString) {
        if let Err(TransportError::Full) = self.send(frame) {
            if !self.0.told.replace(true) {
                log::warn!(
                    "connection {}: outbound queue full, closing as a slow consumer",
                    self.0.id
                );
                if let Some(connection) = self.0.connection.upgrade() {
                    connection.do_send(Close(CloseCode::SlowConsumer));
                }
            }
        }
        // `Closed`: the transport already told the connection, which is stopping.
    }

    /// Tells the connection that its subscription to `channel` has settled.
    pub(crate) fn settled(&self, channel: &Arc<str>) {
        if let Some(connection) = self.0.connection.upgrade() {
            connection.do_send(SubscriptionSettled(channel.clone()));
        }
    }

    /// Writes a frame, reporting a full queue or a closed transport to the caller.
    pub(crate) fn send(&self, frame: ByteString) -> Result<(), TransportError> {
        self.with(|transport| transport.send(frame))
    }
}
