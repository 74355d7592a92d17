//! A connection's subscriptions with history: positions (`pub` frames), recovery of what
//! it missed (`subscribe <ch> {"recover":true,"offset":N,"epoch":"E"}`), the latest value
//! on subscribe (`send_latest`), and `history` requests.
//!
//! A subscription that reads the past joins its thread's registry with
//! [`Join::Recover`]: once the hub subscription is in effect the registry holds the live
//! messages for it and says [`ReadyToRecover`]; the connection reads history, writes what
//! was missed and its `subscribed`, and the registry then lets through the held messages
//! that came after what history gave. So the missed and the live meet with no gap and no
//! duplicate.

use std::sync::Arc;

use actix::prelude::*;

use super::Connection;
use crate::channels::channel_registry::{Delivery, Join, ReadyToRecover};
use crate::codes::ErrorCode;
use crate::hub::history::HistoryPage;
use crate::node::NodeError;
use crate::protocol::{
    action_error_frame, action_response_frame, channel_frame, error_frame, pub_frame,
    subscribed_at_frame, subscribed_frame, HistoryRequest, SubscribeOptions,
};

/// What a subscription that reads the past wants.
pub(super) struct Recovery {
    delivery: Delivery,
    /// Resume after this offset of this epoch.
    since: Option<(u64, String)>,
    /// Only the latest publication (a plain subscriber of a `send_latest` namespace).
    latest: bool,
}

impl Connection {
    /// How a client's subscribe joins: at once, or reading the past first. `Err` when it
    /// asked for positions where there are none.
    pub(super) fn join_for(
        &mut self,
        channel: &str,
        options: &SubscribeOptions,
        ctx: &mut Context<Self>,
    ) -> Result<Join, String> {
        let namespace = self.node.config().security.namespaces.of(channel);
        let recover = options.recover;
        if recover && (namespace.history.is_none() || !namespace.recover) {
            return Err(format!(
                "`{channel}` cannot be recovered: its namespace keeps no history or does \
                 not allow recovery"
            ));
        }
        let (delivery, latest) = match (recover, namespace.send_latest) {
            (true, _) => (Delivery::Positioned, false),
            (false, true) => (Delivery::Plain, true),
            (false, false) => return Ok(Join::Now(Delivery::Plain)),
        };
        self.recoveries.insert(
            Arc::from(channel),
            Recovery {
                delivery,
                since: options.since.clone(),
                latest: latest || (recover && options.since.is_none() && namespace.send_latest),
            },
        );
        Ok(Join::Recover(delivery, ctx.address().recipient()))
    }

    /// The registry holds the live messages: read what this subscription wants of the
    /// past, write it, and let the live ones through.
    fn recover(&mut self, channel: Arc<str>, ctx: &mut Context<Self>) {
        let Some(recovery) = self.recoveries.get(&channel) else {
            return;
        };
        let (since, limit) = match (&recovery.since, recovery.latest) {
            (Some((offset, _)), _) => (Some(*offset), usize::MAX),
            (None, true) => (None, 1),
            (None, false) => (None, 0),
        };
        let node = self.node.clone();
        let name = channel.clone();
        ctx.wait(
            async move { node.history(&name, since, limit).await }
                .into_actor(self)
                .map(move |page, conn, ctx| conn.recovered(channel, page, ctx)),
        );
    }

    fn recovered(
        &mut self,
        channel: Arc<str>,
        page: Result<HistoryPage, NodeError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(recovery) = self.recoveries.remove(&channel) else {
            return;
        };
        if !self.channels.contains(&channel) || self.closed {
            return; // unsubscribed meanwhile
        }
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                let message = format!("cannot read the history of `{channel}`: {err}");
                self.write(
                    error_frame(&ErrorCode::Unavailable, &message, Some(&channel)),
                    ctx,
                );
                self.unsubscribe_quietly(&channel);
                self.settle(&channel, ctx);
                return;
            }
        };
        let position = &page.position;
        let positioned = recovery.delivery == Delivery::Positioned;
        match (&recovery.since, positioned) {
            (Some((since, epoch)), true) => {
                let recovered = page.continues(*since, epoch);
                if recovered {
                    for publication in &page.publications {
                        let payload = String::from_utf8_lossy(&publication.payload);
                        self.write(pub_frame(&channel, publication.offset, &payload), ctx);
                    }
                }
                let frame = subscribed_at_frame(
                    &channel,
                    position.offset,
                    &position.epoch,
                    Some(recovered),
                );
                self.write(frame, ctx);
            }
            _ => {
                let frame = match positioned {
                    true => subscribed_at_frame(&channel, position.offset, &position.epoch, None),
                    false => subscribed_frame(&channel),
                };
                self.write(frame, ctx);
                if recovery.latest {
                    for publication in &page.publications {
                        let payload = String::from_utf8_lossy(&publication.payload);
                        let frame = match positioned {
                            true => pub_frame(&channel, publication.offset, &payload),
                            false => channel_frame(&channel, &payload),
                        };
                        self.write(frame, ctx);
                    }
                }
            }
        }
        if let Some(registry) = &self.registry {
            registry.finish_recovery(&channel, &self.outlet, position.offset);
        }
    }

    /// A `history` request: allowed to whoever may subscribe to the channel.
    pub(super) fn client_history(&mut self, request: HistoryRequest, ctx: &mut Context<Self>) {
        let uid = request.request_uid.clone();
        if !self.may_read(&request.channel, &uid, ctx) {
            return;
        }
        let node = self.node.clone();
        let channel = request.channel.clone();
        let limit = request.limit.unwrap_or(usize::MAX);
        ctx.spawn(
            async move { node.history(&channel, request.since, limit).await }
                .into_actor(self)
                .map(move |page, conn, ctx| {
                    let frame = match page {
                        Ok(page) => action_response_frame(&uid, page.to_json()),
                        Err(err @ NodeError::NoHistory(_)) => {
                            action_error_frame(&uid, &ErrorCode::NotFound, &err.to_string())
                        }
                        Err(err) => {
                            action_error_frame(&uid, &ErrorCode::Unavailable, &err.to_string())
                        }
                    };
                    conn.write(frame, ctx);
                }),
        );
    }
}

impl Handler<ReadyToRecover> for Connection {
    type Result = ();

    fn handle(&mut self, ReadyToRecover(channel): ReadyToRecover, ctx: &mut Context<Self>) {
        self.recover(channel, ctx);
    }
}
