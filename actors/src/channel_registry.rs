//! The channel registry: channel → the local connections subscribed to it.
//!
//! There is one registry per thread that holds connections (one per actix-web worker),
//! so a message for 10,000 subscribers is fanned out by every thread at once, each to its
//! own connections, never funnelled through one. A registry tells the
//! [`HubBridge`](crate::HubBridge) when a channel gains its first local subscriber
//! ([`Activate`]) and loses its last ([`Deactivate`]); the bridge keeps the process's hub
//! subscription reference-counted over all registries and server-side listeners.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;

use crate::codes::ErrorCode;
use crate::connection::Deliver;
use crate::connection_info::ConnectionId;
use crate::hub::HubError;
use crate::hub_bridge::{Activate, Deactivate, HubBridge};
use crate::protocol::{error_frame, subscribed_frame};

struct Subscribers {
    members: HashMap<ConnectionId, Recipient<Deliver>>,
    /// Whether the hub subscription is in effect.
    ready: bool,
    /// Members that still wait for `subscribed <channel>`, and whether they were told
    /// that the hub failed (they hear `subscribed` when it is back, the error only once).
    waiting: Vec<(ConnectionId, bool)>,
}

/// The subscriptions of the connections on one thread.
pub struct ChannelRegistry {
    bridge: Addr<HubBridge>,
    channels: HashMap<Arc<str>, Subscribers>,
}

impl ChannelRegistry {
    /// A registry reporting channel activity to `bridge`.
    pub fn new(bridge: Addr<HubBridge>) -> ChannelRegistry {
        ChannelRegistry {
            bridge,
            channels: HashMap::new(),
        }
    }

    fn leave(&mut self, channel: &Arc<str>, id: &ConnectionId, ctx: &mut Context<Self>) {
        let Some(subscribers) = self.channels.get_mut(channel) else {
            return;
        };
        subscribers.members.remove(id);
        subscribers.waiting.retain(|(waiting, _)| waiting != id);
        if subscribers.members.is_empty() {
            self.channels.remove(channel);
            self.bridge.do_send(Deactivate {
                channel: channel.clone(),
                registry: ctx.address(),
            });
        }
    }
}

impl Actor for ChannelRegistry {
    type Context = Context<Self>;
}

/// Subscribe connection `id` to `channel`; it gets `subscribed <channel>` once the
/// subscription is in effect.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    /// Channel name.
    pub channel: Arc<str>,
    /// The connection.
    pub id: ConnectionId,
    /// Where its frames go.
    pub recipient: Recipient<Deliver>,
}

impl Handler<Join> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) {
        let subscribers = match self.channels.get_mut(&join.channel) {
            Some(subscribers) => subscribers,
            None => {
                self.bridge.do_send(Activate {
                    channel: join.channel.clone(),
                    registry: ctx.address(),
                });
                self.channels
                    .entry(join.channel.clone())
                    .or_insert(Subscribers {
                        members: HashMap::new(),
                        ready: false,
                        waiting: Vec::new(),
                    })
            }
        };
        if subscribers.ready {
            join.recipient.do_send(Deliver {
                channel: Some(join.channel.clone()),
                frame: subscribed_frame(&join.channel),
            });
        } else {
            subscribers.waiting.push((join.id.clone(), false));
        }
        subscribers.members.insert(join.id, join.recipient);
    }
}

/// Unsubscribe connection `id` from `channel`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    /// Channel name.
    pub channel: Arc<str>,
    /// The connection.
    pub id: ConnectionId,
}

impl Handler<Leave> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, leave: Leave, ctx: &mut Context<Self>) {
        self.leave(&leave.channel, &leave.id, ctx);
    }
}

/// Connection `id` is gone: release all its subscriptions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveAll {
    /// The connection.
    pub id: ConnectionId,
    /// The channels it was subscribed to.
    pub channels: Vec<Arc<str>>,
}

impl Handler<LeaveAll> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, leave: LeaveAll, ctx: &mut Context<Self>) {
        for channel in &leave.channels {
            self.leave(channel, &leave.id, ctx);
        }
    }
}

/// From the bridge: the hub subscription of `channel` is in effect (or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelReady {
    /// Channel name.
    pub channel: Arc<str>,
    /// The hub's answer.
    pub result: Result<(), HubError>,
}

impl Handler<ChannelReady> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, ready: ChannelReady, _: &mut Context<Self>) {
        let Some(subscribers) = self.channels.get_mut(&ready.channel) else {
            return;
        };
        let (frame, told) = match &ready.result {
            Ok(()) => {
                subscribers.ready = true;
                (subscribed_frame(&ready.channel), Vec::new())
            }
            // The subscription stays recorded (and local messages flow): the bridge asks
            // again, and the hub resubscribes when it is back; `subscribed` comes then.
            Err(err) => (
                error_frame(
                    &ErrorCode::Unavailable,
                    &format!(
                        "subscription recorded, but the hub failed: {err}; messages from \
                         this server only until it is back"
                    ),
                    Some(&ready.channel),
                ),
                subscribers.waiting.clone(),
            ),
        };
        for (id, told) in subscribers.waiting.drain(..) {
            if told && ready.result.is_err() {
                continue;
            }
            if let Some(recipient) = subscribers.members.get(&id) {
                recipient.do_send(Deliver {
                    channel: Some(ready.channel.clone()),
                    frame: frame.clone(),
                });
            }
        }
        // Those told of the failure still wait for `subscribed`.
        subscribers
            .waiting
            .extend(told.into_iter().map(|(id, _)| (id, true)));
    }
}

/// From the bridge: a message for every local subscriber of `channel`. The frame is
/// formatted once and shared by all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch {
    /// Channel name.
    pub channel: Arc<str>,
    /// The whole `channel <name> <payload>` frame.
    pub frame: ByteString,
}

impl Handler<Dispatch> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, dispatch: Dispatch, _: &mut Context<Self>) {
        let Some(subscribers) = self.channels.get(&dispatch.channel) else {
            return;
        };
        for recipient in subscribers.members.values() {
            recipient.do_send(Deliver {
                channel: Some(dispatch.channel.clone()),
                frame: dispatch.frame.clone(),
            });
        }
    }
}

/// Which local connections are subscribed to a channel.
#[derive(Message)]
#[rtype(result = "Vec<ConnectionId>")]
pub struct ListSubscribers(pub Arc<str>);

impl Handler<ListSubscribers> for ChannelRegistry {
    type Result = Vec<ConnectionId>;

    fn handle(&mut self, list: ListSubscribers, _: &mut Context<Self>) -> Vec<ConnectionId> {
        self.channels
            .get(&list.0)
            .map(|subscribers| subscribers.members.keys().cloned().collect())
            .unwrap_or_default()
    }
}
