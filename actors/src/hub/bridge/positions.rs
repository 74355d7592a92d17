//! The delivery of a channel with history: messages in offset order, once; a gap filled
//! from history before what follows; what history cannot fill announced (`gap`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use super::{Gap, HubBridge};
use crate::hub::history::{HistoryPage, HistoryQuery, Position};
use crate::hub::HubError;
use crate::protocol::gap_frame;

/// The most bytes of messages a channel holds while a gap before them is read from
/// history; beyond it the gap is announced instead of filled.
const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;

impl HubBridge {
    /// A message of a channel with history: delivered in offset order, once. A gap (the
    /// hub dropped something, e.g. around a Redis reconnect) is filled from history
    /// first, with later messages held meanwhile; what history cannot fill is announced
    /// (`gap`), never skipped silently.
    pub(super) fn deliver_positioned(
        &mut self,
        name: &str,
        position: Position,
        payload: Bytes,
        ctx: &mut Context<Self>,
    ) {
        let Some(route) = self.routes.get_mut(name) else {
            return;
        };
        if let Some(held) = &mut route.filling {
            if route.filling_bytes + payload.len() <= MAX_HELD_BYTES {
                route.filling_bytes += payload.len();
                held.push((position, payload));
                return;
            }
            // The read takes too long for what keeps coming: give up filling, say what
            // is missing, and go on with what was held.
            let held = route.filling.take().unwrap_or_default();
            route.filling_bytes = 0;
            log::warn!("hub: gave up filling a gap of `{name}`: too much came meanwhile");
            if let Some((first, _)) = held.first() {
                let (offset, epoch) = (first.offset.saturating_sub(1), first.epoch.clone());
                self.announce_gap(name, offset, &epoch);
            }
            for (position, payload) in held {
                self.deliver_positioned(name, position, payload, ctx);
            }
            self.deliver_positioned(name, position, payload, ctx);
            return;
        }
        match &route.position {
            Some(last) if last.epoch == position.epoch && position.offset <= last.offset => {
                // Already delivered (it came back twice, or a fill read it first).
            }
            Some(last) if last.epoch == position.epoch && position.offset > last.offset + 1 => {
                let since = last.offset;
                let missing = position.offset - since - 1;
                let history = self.namespaces.of(name).history;
                let limit = history
                    .map_or(0, |history| history.size)
                    .min(usize::try_from(missing).unwrap_or(usize::MAX));
                route.filling_bytes = payload.len();
                route.filling = Some(vec![(position, payload)]);
                log::debug!(
                    "hub: {missing} messages of `{name}` missing after {since}; reading history"
                );
                let ttl = history.map_or(Duration::from_secs(1), |history| history.ttl);
                let read = self.hub.history(
                    &self.names.history(name),
                    HistoryQuery {
                        since: Some(since),
                        limit,
                    },
                    ttl,
                );
                let name: Arc<str> = Arc::from(name);
                ctx.spawn(read.into_actor(self).map(move |page, bridge, ctx| {
                    bridge.filled(&name, page, ctx);
                }));
            }
            Some(last) if last.epoch != position.epoch => {
                // The history was lost (a new epoch): say so, then go on from here.
                self.announce_gap(name, position.offset.saturating_sub(1), &position.epoch);
                self.accept(name, position, payload);
            }
            _ => self.accept(name, position, payload),
        }
    }

    /// A gap's history came: deliver what it holds in order, announce what it lacks,
    /// then the messages held meanwhile.
    fn filled(
        &mut self,
        name: &Arc<str>,
        page: Result<HistoryPage, HubError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(route) = self.routes.get_mut(name) else {
            return;
        };
        let held = route.filling.take().unwrap_or_default();
        route.filling_bytes = 0;
        let Some(last) = route.position.clone() else {
            return;
        };
        let mut next = last.offset + 1;
        match page {
            Ok(page) if page.position.epoch == last.epoch => {
                for publication in page.publications {
                    if publication.offset == next {
                        let position = Position {
                            offset: next,
                            epoch: last.epoch.clone(),
                        };
                        self.accept(name, position, publication.payload);
                        next += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(err) => log::warn!("hub: cannot read the history of `{name}` to fill a gap: {err}"),
        }
        if let Some((first, _)) = held.first() {
            if first.epoch == last.epoch && first.offset > next {
                self.announce_gap(name, first.offset - 1, &first.epoch);
            }
        }
        // In order: a further gap among them starts a further read, which holds the
        // rest again.
        for (position, payload) in held {
            self.deliver_positioned(name, position, payload, ctx);
        }
    }

    /// Delivers a positioned message and records its position.
    fn accept(&mut self, name: &str, position: Position, payload: Bytes) {
        let offset = position.offset;
        if let Some(route) = self.routes.get_mut(name) {
            route.position = Some(position);
        }
        self.deliver_channel(name, payload, Some(offset));
    }

    /// Tells the registries that the position of `name` jumped to `offset` of `epoch`.
    fn announce_gap(&mut self, name: &str, offset: u64, epoch: &Arc<str>) {
        let Some((channel, route)) = self.routes.get_key_value(name) else {
            return;
        };
        log::warn!("hub: publications of `{name}` were lost; subscribers hear of the gap");
        let frame = gap_frame(channel, offset, epoch);
        for registry in &route.registries {
            registry.gap.do_send(Gap {
                channel: channel.clone(),
                frame: frame.clone(),
                offset,
            });
        }
        if let Some(route) = self.routes.get_mut(name) {
            route.position = Some(Position {
                offset,
                epoch: epoch.clone(),
            });
        }
    }
}
