//! A connection's presence: its entry in each channel with presence it is a member of,
//! the join and leave events it asked for (`subscribe <ch> {"joinLeave":true}`), and the
//! `presence` / `presence_stats` requests.
//!
//! The entry is written once the subscription is in effect (after `subscribed`), through
//! the process's [`PresenceKeeper`](crate::channels::presence_keeper::PresenceKeeper),
//! and removed when the connection unsubscribes or ends; a new identity (an `auth` in
//! band) writes it again. Join and leave events start at the same moment, so a subscriber
//! never hears of joins before its own `subscribed`.

use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

use super::Connection;
use crate::channels::presence_keeper::{Enter, Exit};
use crate::codes::ErrorCode;
use crate::hub::presence::{Member, PresenceEntry};
use crate::node::NodeError;
use crate::protocol::{action_error_frame, action_response_frame, PresenceRequest};

impl Connection {
    /// This connection's entry, as of its identity now.
    fn member(&self) -> Member {
        Member::new(&PresenceEntry {
            connection: self.info.id.as_str().to_owned(),
            user: self.info.identity.user.clone(),
            info: self.info.identity.info.clone(),
        })
    }

    /// Whether a subscribe may ask for join and leave events of `channel`.
    pub(super) fn check_join_leave(&self, channel: &str, wanted: bool) -> Result<(), String> {
        match wanted
            && !self
                .node
                .config()
                .security
                .namespaces
                .of(channel)
                .join_leave
        {
            true => Err(format!(
                "`{channel}` has no join and leave events: its namespace has no join_leave"
            )),
            false => Ok(()),
        }
    }

    /// The subscription to `channel` is in effect: enter its presence, and start the
    /// join and leave events if asked.
    pub(super) fn enter_presence(&mut self, channel: &Arc<str>) {
        if !self.node.config().security.namespaces.of(channel).presence
            || self.present.contains(channel)
        {
            return;
        }
        self.present.insert(channel.clone());
        self.node.presence_keeper().do_send(Enter {
            channel: channel.clone(),
            member: self.member(),
        });
        if self.join_leave.contains(channel) {
            if let Some(registry) = &self.registry {
                registry.listen_join_leave(channel, &self.info.id, &self.outlet);
            }
        }
    }

    /// The connection left `channel` (or is ending).
    pub(super) fn exit_presence(&mut self, channel: &str) {
        self.join_leave.remove(channel);
        if let Some(channel) = self.present.take(channel) {
            self.node.presence_keeper().do_send(Exit {
                channel,
                connection: Arc::from(self.info.id.as_str()),
            });
        }
    }

    /// The identity changed: every entry is written again with it.
    pub(super) fn reenter_presence(&mut self) {
        for channel in &self.present {
            self.node.presence_keeper().do_send(Enter {
                channel: channel.clone(),
                member: self.member(),
            });
        }
    }

    /// A `presence` (`stats` false) or `presence_stats` request: allowed to whoever may
    /// subscribe to the channel.
    pub(super) fn client_presence(
        &mut self,
        request: PresenceRequest,
        stats: bool,
        ctx: &mut Context<Self>,
    ) {
        let uid = request.request_uid;
        if !self.may_read(&request.channel, &uid, ctx) {
            return;
        }
        let node = self.node.clone();
        let channel = request.channel;
        ctx.spawn(
            async move {
                match stats {
                    true => node
                        .presence_stats(&channel)
                        .await
                        .map(|stats| serde_json::to_value(stats).unwrap_or(Value::Null)),
                    false => node
                        .presence(&channel)
                        .await
                        .map(|presence| serde_json::to_value(presence).unwrap_or(Value::Null)),
                }
            }
            .into_actor(self)
            .map(move |answer, conn, ctx| {
                // The whole list of a big channel may not fit the client's queue: it is
                // refused rather than closing the client as a slow consumer.
                let room = conn.node.config().limits.outbound_queue_bytes / 2;
                let frame = match answer {
                    Ok(answer) => {
                        let frame = action_response_frame(&uid, answer);
                        match frame.len() <= room {
                            true => frame,
                            false => action_error_frame(
                                &uid,
                                &ErrorCode::TooLarge,
                                &format!(
                                    "the presence of this channel takes {} bytes, more than \
                                     half the connection's outbound_queue_bytes: ask \
                                     presence_stats, or read it on the server",
                                    frame.len()
                                ),
                            ),
                        }
                    }
                    Err(err @ NodeError::NoPresence(_)) => {
                        action_error_frame(&uid, &ErrorCode::NotFound, &err.to_string())
                    }
                    Err(err @ NodeError::BadChannel(..)) => {
                        action_error_frame(&uid, &ErrorCode::BadChannel, &err.to_string())
                    }
                    Err(err) => action_error_frame(&uid, &ErrorCode::Unavailable, &err.to_string()),
                };
                conn.write(frame, ctx);
            }),
        );
    }
}
