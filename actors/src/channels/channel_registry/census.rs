//! [`ListChannels`]: the channels of one thread's registry and how many of its
//! connections are on each, for the server API's `channels` and `info`. Apart from the
//! registry's delivery code: it is read a few times a minute, never on a delivery.

use std::sync::Arc;

use actix::prelude::*;

use super::ChannelRegistry;

/// The channels with local subscribers on this registry's thread, each with their
/// number (members, and connections still joining or recovering).
#[derive(Message)]
#[rtype(result = "Vec<(Arc<str>, usize)>")]
pub struct ListChannels;

impl Handler<ListChannels> for ChannelRegistry {
    type Result = Vec<(Arc<str>, usize)>;

    fn handle(&mut self, _: ListChannels, _: &mut Context<Self>) -> Self::Result {
        self.channels
            .borrow()
            .channels
            .iter()
            .map(|(name, subscribers)| {
                let count = subscribers.plain.ids.len()
                    + subscribers.positioned.ids.len()
                    + subscribers.waiting.len()
                    + subscribers.recovering.len()
                    + subscribers.catching_up.len();
                (name.clone(), count)
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}
