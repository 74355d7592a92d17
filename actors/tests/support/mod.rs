//! The actor-level test harness: a node on the in-memory hub and queue, and connections
//! whose outlet the test itself drains, as a transport's writer would. No sockets, no
//! HTTP: what these tests see is the core's own behaviour (frames, heartbeats, closes),
//! the same over every transport.
#![allow(dead_code)] // each test file uses a different part of it

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;
use comet_actors::protocol::{parse_server_frame, ServerFrame};
use comet_actors::{
    handler_fn, Action, Connection, ConnectionEvent, ConnectionId, ConnectionInfo, Drained, Hub,
    Inbound, MemoryHub, MemoryQueue, Node, NodeConfig, Out, Outlet, Router,
};
use serde_json::{Map, Value};

/// How long a test waits for something that must come, in real time. With paused time,
/// the runtime jumps to the next timer whenever it is idle, so this only ends a test that
/// is stuck for good.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A node on the in-memory hub and queue with `config` and `router`.
/// A router whose one route, `test/never`, never answers.
pub fn never_answers() -> Router {
    let mut router = Router::new();
    router.route(
        "test/never",
        handler_fn(|_: Action| async move {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }),
    );
    router
}

pub fn node(config: NodeConfig, router: Router) -> Node {
    node_on(config, Arc::new(MemoryHub::new()), router)
}

/// A node on `hub` and the in-memory queue.
pub fn node_on(config: NodeConfig, hub: Arc<dyn Hub>, router: Router) -> Node {
    Node::start(config, hub, Arc::new(MemoryQueue::new()), router)
}

/// One client at actor level: its [`Connection`], and the outlet the test drains, one
/// item at a time and only when it asks ([`next`](Self::next)): a client that does not
/// ask is a client that stopped reading.
pub struct Client {
    pub id: ConnectionId,
    pub connection: Addr<Connection>,
    pub outlet: Outlet,
    taken: VecDeque<Out>,
}

impl Client {
    /// Starts a connection of `node` on an outlet bounded by the node's limits.
    pub fn start(node: &Node) -> Client {
        Client::start_on(node, Outlet::new(&node.config().limits))
    }

    /// Starts a connection of `node` on `outlet` (e.g. one its transport vouches for).
    pub fn start_on(node: &Node, outlet: Outlet) -> Client {
        Client::start_with(node, outlet, |_| {})
    }

    /// Starts a connection of `node` whose request `request` fills in (query, ip,
    /// headers), as a transport would.
    pub fn start_with(
        node: &Node,
        outlet: Outlet,
        request: impl FnOnce(&mut ConnectionInfo),
    ) -> Client {
        let id = node.next_connection_id();
        let mut info = ConnectionInfo::new(id.clone(), "test");
        request(&mut info);
        let connection = Connection::new(node.clone(), info, outlet.clone()).start();
        Client {
            id,
            connection,
            outlet,
            taken: VecDeque::new(),
        }
    }

    /// The client sends a text frame.
    pub fn send(&self, frame: &str) {
        self.connection
            .do_send(Inbound(ByteString::from(frame.to_owned())));
    }

    /// The next thing the outlet gives, waiting for it (woken by the outlet, as a
    /// transport's writer is). Panics if the outlet finished with nothing more.
    pub async fn next(&mut self) -> Out {
        let taken = &mut self.taken;
        let outlet = &self.outlet;
        let next = futures::future::poll_fn(|cx| {
            if let Some(out) = taken.pop_front() {
                return Poll::Ready(Some(out));
            }
            loop {
                let drained = outlet.drain(64 * 1024, |out| taken.push_back(out));
                if let Some(out) = taken.pop_front() {
                    return Poll::Ready(Some(out));
                }
                match drained {
                    Drained::More => continue,
                    Drained::Idle => {
                        outlet.wait(cx.waker());
                        return Poll::Pending;
                    }
                    Drained::Closed => return Poll::Ready(None),
                }
            }
        });
        tokio::time::timeout(PATIENCE, next)
            .await
            .expect("the outlet gives something within the patience window")
            .expect("the outlet finished with nothing more")
    }

    /// The close that ends the outlet, skipping frames and heartbeats before it; returns
    /// it with the frames it skipped.
    pub async fn closed(&mut self) -> (comet_actors::CloseCode, Vec<String>) {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Out::Heartbeat => continue,
                Out::Frame(frame) => frames.push(frame.to_string()),
                Out::Close(code) => return (code, frames),
            }
        }
    }

    /// The next frame, skipping heartbeats; panics on a close.
    pub async fn frame(&mut self) -> String {
        loop {
            match self.next().await {
                Out::Heartbeat => continue,
                Out::Frame(frame) => return frame.to_string(),
                Out::Close(code) => panic!("expected a frame, got the close {code:?}"),
            }
        }
    }

    /// The next action answer (skipping heartbeats), as its JSON object.
    pub async fn answer(&mut self) -> Map<String, Value> {
        let frame = self.frame().await;
        match parse_server_frame(&frame) {
            Ok(ServerFrame::Action(object)) => object,
            _ => panic!("expected an action answer, got {frame}"),
        }
    }

    /// Subscribes and waits for `subscribed <channel>`.
    pub async fn subscribe(&mut self, channel: &str) {
        self.send(&format!("subscribe {channel}"));
        assert_eq!(self.frame().await, format!("subscribed {channel}"));
    }

    /// Whether anything waits in the outlet now (nothing taken and not yet handed out
    /// counts too).
    pub fn has_output(&self) -> bool {
        !self.taken.is_empty() || self.outlet.has_output()
    }
}

/// Waits for the next `Added` event of `events`: the connection is in the node's
/// directory, so the server API reaches it.
pub async fn added(events: &mut tokio::sync::broadcast::Receiver<ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("a connection event within the patience window")
            .expect("the node's events");
        if let ConnectionEvent::Added(_) = event {
            return;
        }
    }
}

/// Waits for the next `Removed` event of `events`.
pub async fn removed(events: &mut tokio::sync::broadcast::Receiver<ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("a connection event within the patience window")
            .expect("the node's events");
        if let ConnectionEvent::Removed(_) = event {
            return;
        }
    }
}

/// Time gone by since `start` on tokio's clock: in a test that paused it, virtual time,
/// which moves only when the runtime jumps to its next timer (never wall time).
pub fn since(start: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now() - start
}

/// Waits until `check` answers true, asking again every 100 ms of tokio's clock (virtual
/// time in a test that paused it); panics after [`PATIENCE`] of it.
pub async fn eventually_async<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(since(start) < PATIENCE, "not so within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
