//! The presence keeper: this process's side of presence (see [`crate::hub::presence`]).
//!
//! Connections tell it when they become members of a channel with presence ([`Enter`])
//! and when they stop ([`Exit`]); it writes the differences to the hub's store in
//! batches, one per channel per `join_leave_window`, so that many joins and leaves make
//! one write and one event message of each kind (a connection that came and went within
//! the window makes none). Every third of `presence_ttl` it renews the process's entries
//! of every channel; when the store answers that it had lost them (Redis restarted, or
//! the process was silent too long and its entries were reaped), it writes them all
//! again. A write that fails is undone in its books and tried again at the next renewal,
//! so nothing is lost while the hub is away.
//!
//! Reads ([`ReadPresence`], [`ReadPresenceStats`]) go through it too: the channel's
//! pending changes are written first and the hub runs presence operations in call order,
//! so a connection that has its `subscribed` sees itself in the answer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::channels::namespaces::{Namespace, Namespaces};
use crate::hub::presence::{Events, Member, PresenceStats, PresenceUpdate, PresenceWritten};
use crate::hub::{Hub, HubError, HubNames, PresenceKeys};

/// The events a namespace's channels announce.
pub(crate) fn events_of(namespace: &Namespace) -> Events {
    match (namespace.join_leave, namespace.join_leave_max_clients) {
        (false, _) => Events::Off,
        (true, Some(max)) => Events::UpTo(max),
        (true, None) => Events::On,
    }
}

/// This process's books of one channel.
struct Kept {
    keys: PresenceKeys,
    /// The entries of this process's member connections.
    local: HashMap<Arc<str>, Member>,
    /// What the store has of this process's entries, as far as it knows (its writes
    /// count as done when sent, and are undone if they fail).
    stored: HashMap<Arc<str>, Member>,
    /// Connections whose `local` and `stored` may differ.
    dirty: HashSet<Arc<str>>,
    /// The next batch's timer.
    flush: Option<SpawnHandle>,
    /// The store has this process vouching for its entries here (a write succeeded since
    /// the last one that said it was gone).
    vouched: bool,
    /// Writes sent and not answered.
    in_flight: usize,
}

impl Kept {
    fn is_idle(&self) -> bool {
        self.local.is_empty()
            && self.stored.is_empty()
            && self.dirty.is_empty()
            && !self.vouched
            && self.in_flight == 0
            && self.flush.is_none()
    }
}

/// Keeps this process's presence entries in the hub.
pub struct PresenceKeeper {
    process: String,
    hub: Arc<dyn Hub>,
    names: HubNames,
    namespaces: Namespaces,
    channels: HashMap<Arc<str>, Kept>,
    /// The hub failed a write and has not succeeded since (logged once).
    failing: bool,
    /// The process is shutting down: its entries are gone and no more are taken.
    departed: bool,
}

impl PresenceKeeper {
    /// A keeper for process `process`, writing through `hub` under `names`.
    pub fn new(
        process: String,
        hub: Arc<dyn Hub>,
        names: HubNames,
        namespaces: Namespaces,
    ) -> PresenceKeeper {
        PresenceKeeper {
            process,
            hub,
            names,
            namespaces,
            channels: HashMap::new(),
            failing: false,
            departed: false,
        }
    }

    fn kept(&mut self, channel: &Arc<str>) -> &mut Kept {
        let names = &self.names;
        self.channels
            .entry(channel.clone())
            .or_insert_with(|| Kept {
                keys: names.presence(channel),
                local: HashMap::new(),
                stored: HashMap::new(),
                dirty: HashSet::new(),
                flush: None,
                vouched: false,
                in_flight: 0,
            })
    }

    /// A connection's entry changed: write it with the channel's next batch.
    fn changed(&mut self, channel: Arc<str>, connection: Arc<str>, ctx: &mut Context<Self>) {
        let window = self.namespaces.of(&channel).join_leave_window;
        let kept = self.kept(&channel);
        kept.dirty.insert(connection);
        if kept.flush.is_none() {
            kept.flush = Some(ctx.run_later(window, move |keeper, ctx| {
                keeper.flush(&channel, ctx);
            }));
        }
    }

    /// Writes what changed in `channel` since the last write (or only renews the
    /// process's entries there, when nothing did).
    fn flush(&mut self, channel: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(kept) = self.channels.get_mut(channel) else {
            return;
        };
        if let Some(timer) = kept.flush.take() {
            ctx.cancel_future(timer);
        }
        let (mut leaves, mut joins) = (Vec::new(), Vec::new());
        for connection in std::mem::take(&mut kept.dirty) {
            let local = kept.local.get(&connection).cloned();
            if local.as_ref() == kept.stored.get(&connection) {
                continue;
            }
            if let Some(stored) = kept.stored.remove(&connection) {
                leaves.push(stored);
            }
            if let Some(local) = local {
                kept.stored.insert(connection, local.clone());
                joins.push(local);
            }
        }
        if leaves.is_empty() && joins.is_empty() && !kept.vouched {
            // Nothing of this process is (or is to be) there.
            if kept.is_idle() {
                self.channels.remove(channel);
            }
            return;
        }
        self.write(channel, leaves, joins, ctx);
    }

    fn write(
        &mut self,
        channel: &Arc<str>,
        leaves: Vec<Member>,
        joins: Vec<Member>,
        ctx: &mut Context<Self>,
    ) {
        let namespace = self.namespaces.of(channel);
        let (events, ttl) = (events_of(namespace), namespace.presence_ttl);
        let Some(kept) = self.channels.get_mut(channel) else {
            return;
        };
        let gone = kept.local.is_empty();
        let expected = kept.vouched;
        kept.vouched = !gone;
        kept.in_flight += 1;
        let update = PresenceUpdate {
            process: self.process.clone(),
            leaves: leaves.clone(),
            joins: joins.clone(),
            events,
            ttl,
            gone,
        };
        let written = self.hub.presence_update(&kept.keys, update);
        let channel = channel.clone();
        ctx.spawn(written.into_actor(self).map(move |result, keeper, ctx| {
            keeper.written(&channel, (leaves, joins), expected, result, ctx);
        }));
    }

    /// The store answered a write.
    fn written(
        &mut self,
        channel: &Arc<str>,
        (leaves, joins): (Vec<Member>, Vec<Member>),
        expected: bool,
        result: Result<PresenceWritten, HubError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(kept) = self.channels.get_mut(channel) else {
            return;
        };
        kept.in_flight -= 1;
        match result {
            Ok(written) => {
                if std::mem::take(&mut self.failing) {
                    log::info!("presence: writing to the hub again");
                }
                if expected && !written.existed && !kept.local.is_empty() {
                    log::info!(
                        "presence: the hub had lost this process's entries of `{channel}`; \
                         writing its {} entries again",
                        kept.local.len()
                    );
                    kept.stored.clear();
                    let all: Vec<Arc<str>> = kept.local.keys().cloned().collect();
                    kept.dirty.extend(all);
                    self.flush(channel, ctx);
                } else if kept.is_idle() {
                    self.channels.remove(channel);
                }
            }
            Err(err) => {
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!(
                        "presence: cannot write to the hub ({err}); trying again at each \
                         renewal"
                    );
                }
                // Undo what the books took as done; the next renewal writes it.
                kept.vouched = expected;
                for member in joins {
                    if kept.stored.get(&member.connection) == Some(&member) {
                        kept.stored.remove(&member.connection);
                    }
                    kept.dirty.insert(member.connection);
                }
                for member in leaves {
                    kept.stored
                        .entry(member.connection.clone())
                        .or_insert(member.clone());
                    kept.dirty.insert(member.connection);
                }
            }
        }
    }

    /// Renews this process's entries in every channel (and writes what waits).
    fn renew(&mut self, ctx: &mut Context<Self>) {
        let channels: Vec<Arc<str>> = self.channels.keys().cloned().collect();
        for channel in channels {
            self.flush(&channel, ctx);
        }
    }
}

impl Actor for PresenceKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(ttl) = self.namespaces.shortest_presence_ttl() {
            let every = (ttl / 3).max(Duration::from_millis(100));
            ctx.run_interval(every, |keeper, ctx| keeper.renew(ctx));
        }
    }
}

/// From a connection: it is a member of `channel` (a channel with presence), with this
/// entry; again with a new entry when its identity changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enter {
    /// Channel name.
    pub channel: Arc<str>,
    /// Its entry.
    pub member: Member,
}

impl Handler<Enter> for PresenceKeeper {
    type Result = ();

    fn handle(&mut self, enter: Enter, ctx: &mut Context<Self>) {
        if self.departed {
            return;
        }
        let connection = enter.member.connection.clone();
        self.kept(&enter.channel)
            .local
            .insert(connection.clone(), enter.member);
        self.changed(enter.channel, connection, ctx);
    }
}

/// From a connection: it is no longer a member of `channel`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Exit {
    /// Channel name.
    pub channel: Arc<str>,
    /// The connection's id.
    pub connection: Arc<str>,
}

impl Handler<Exit> for PresenceKeeper {
    type Result = ();

    fn handle(&mut self, exit: Exit, ctx: &mut Context<Self>) {
        let Some(kept) = self.channels.get_mut(&exit.channel) else {
            return;
        };
        if kept.local.remove(&exit.connection).is_some() {
            self.changed(exit.channel, exit.connection, ctx);
        }
    }
}

/// Reads the entries of a channel with presence (their JSON), this process's pending
/// changes written first.
#[derive(Message)]
#[rtype(result = "Result<Vec<Arc<str>>, HubError>")]
pub struct ReadPresence(pub Arc<str>);

impl Handler<ReadPresence> for PresenceKeeper {
    type Result = ResponseFuture<Result<Vec<Arc<str>>, HubError>>;

    fn handle(
        &mut self,
        ReadPresence(channel): ReadPresence,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.flush(&channel, ctx);
        let events = events_of(self.namespaces.of(&channel));
        Box::pin(self.hub.presence(&self.names.presence(&channel), events))
    }
}

/// Reads the numbers of a channel with presence, this process's pending changes written
/// first.
#[derive(Message)]
#[rtype(result = "Result<PresenceStats, HubError>")]
pub struct ReadPresenceStats(pub Arc<str>);

impl Handler<ReadPresenceStats> for PresenceKeeper {
    type Result = ResponseFuture<Result<PresenceStats, HubError>>;

    fn handle(
        &mut self,
        ReadPresenceStats(channel): ReadPresenceStats,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.flush(&channel, ctx);
        let events = events_of(self.namespaces.of(&channel));
        Box::pin(
            self.hub
                .presence_stats(&self.names.presence(&channel), events),
        )
    }
}

/// On shutdown: removes every entry of this process now (announced as leaves), and takes
/// no more. Answered once the hub has the writes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Depart;

impl Handler<Depart> for PresenceKeeper {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Depart, ctx: &mut Context<Self>) -> Self::Result {
        self.departed = true;
        let mut writes = Vec::new();
        for (channel, kept) in &mut self.channels {
            if let Some(timer) = kept.flush.take() {
                ctx.cancel_future(timer);
            }
            kept.local.clear();
            let leaves: Vec<Member> = kept.stored.drain().map(|(_, member)| member).collect();
            if leaves.is_empty() && !kept.vouched {
                continue;
            }
            let namespace = self.namespaces.of(channel);
            writes.push(self.hub.presence_update(
                &kept.keys,
                PresenceUpdate {
                    process: self.process.clone(),
                    leaves,
                    joins: Vec::new(),
                    events: events_of(namespace),
                    ttl: namespace.presence_ttl,
                    gone: true,
                },
            ));
        }
        self.channels.clear();
        Box::pin(
            async move {
                for write in futures::future::join_all(writes).await {
                    if let Err(err) = write {
                        log::warn!("presence: cannot remove this process's entries: {err}");
                    }
                }
            }
            .into_actor(self),
        )
    }
}
