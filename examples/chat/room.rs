//! The chat room: nicknames, the recent history and who is here, as one actor.
//!
//! It hears the `chat` channel like any subscriber would (a server-side listener). It
//! hears connections leave on the `chat.left` channel, where every process of the demo
//! publishes the ids of its connections that go, so that in a cluster the room learns of
//! departures from every process, not only from the one it runs on.

use std::collections::{BTreeMap, VecDeque};

use actix::prelude::*;
use comet::{
    Action, ActionError, ActionResult, ChannelMessage, ConnectionEvent, ConnectionId, Node,
};
use serde_json::{json, Value};

/// How many messages `chat/history` returns.
const HISTORY: usize = 50;
/// Longest nickname, in characters.
const MAX_NICK: usize = 32;
/// The channel the page chats on.
pub const CHANNEL: &str = "chat";
/// Where every process publishes the id of each of its connections that goes. (A client
/// could publish there too; ids are not shown to clients, and the worst a guessed one
/// does is take a nick off the demo's who-is-here list.)
const LEFT: &str = "chat.left";

/// The room's state; handles `chat/nick`, `chat/who` and `chat/history`.
pub struct ChatRoom {
    node: Node,
    nicks: BTreeMap<ConnectionId, String>,
    history: VecDeque<Value>,
}

impl ChatRoom {
    /// A room publishing through `node`.
    pub fn new(node: Node) -> ChatRoom {
        ChatRoom {
            node,
            nicks: BTreeMap::new(),
            history: VecDeque::new(),
        }
    }

    fn announce(&self, event: Value) {
        let published = self.node.publish(CHANNEL, event);
        actix::spawn(async move {
            if let Err(err) = published.await {
                log::warn!("chat: cannot announce: {err}");
            }
        });
    }

    fn nick(&mut self, action: &Action) -> ActionResult {
        let nick = action
            .str_param("nick")
            .map(str::trim)
            .filter(|nick| !nick.is_empty() && nick.chars().count() <= MAX_NICK)
            .ok_or_else(|| {
                ActionError::new("bad_nick", format!("a nick is 1 to {MAX_NICK} characters"))
            })?
            .to_owned();
        let id = action.connection().id.clone();
        let taken = self
            .nicks
            .iter()
            .any(|(other, n)| *n == nick && *other != id);
        if taken {
            return Err(ActionError::new("nick_taken", format!("`{nick}` is taken")));
        }
        match self.nicks.insert(id, nick.clone()) {
            Some(old) if old != nick => {
                self.announce(json!({ "type": "rename", "nick": nick, "old": old }))
            }
            Some(_) => {}
            None => self.announce(json!({ "type": "join", "nick": nick })),
        }
        Ok(json!({ "nick": nick }))
    }

    /// A connection left (on any process): forget its nick and say so.
    fn left(&mut self, id: ConnectionId) {
        if let Some(nick) = self.nicks.remove(&id) {
            self.announce(json!({ "type": "leave", "nick": nick }));
        }
    }

    fn who(&self) -> Vec<&str> {
        let mut nicks: Vec<&str> = self.nicks.values().map(String::as_str).collect();
        nicks.sort_unstable();
        nicks
    }
}

impl Actor for ChatRoom {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for channel in [CHANNEL, LEFT] {
            let node = self.node.clone();
            let listener = ctx.address().recipient();
            ctx.spawn(
                async move { node.on_channel(channel, listener).await }
                    .into_actor(self)
                    .map(move |result, _, _| {
                        if let Err(err) = result {
                            log::error!("chat: cannot listen to `{channel}`: {err}");
                        }
                    }),
            );
        }
        // This process's connections that go, for whichever process holds the nicks.
        let mut events = self.node.events();
        let node = self.node.clone();
        actix::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(ConnectionEvent::Removed(info)) => {
                        if let Err(err) = node.publish(LEFT, info.id.to_string()).await {
                            log::warn!("chat: cannot say that {} left: {err}", info.id);
                        }
                    }
                    Ok(ConnectionEvent::Added(_) | ConnectionEvent::Updated(_))
                    | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }
}

impl Handler<Action> for ChatRoom {
    type Result = ActionResult;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
        match action.route() {
            "chat/nick" => self.nick(&action),
            "chat/who" => Ok(json!({ "nicks": self.who() })),
            "chat/history" => Ok(json!({ "messages": self.history })),
            other => Err(ActionError::new(
                "not_found",
                format!("no chat action `{other}`"),
            )),
        }
    }
}

impl Handler<ChannelMessage> for ChatRoom {
    type Result = ();

    fn handle(&mut self, message: ChannelMessage, _: &mut Context<Self>) {
        if &*message.channel == LEFT {
            match ConnectionId::parse(&message.payload) {
                Some(id) => self.left(id),
                None => log::warn!("chat: `{LEFT}` carried no connection id"),
            }
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(&message.payload) else {
            return;
        };
        if event.get("type").and_then(Value::as_str) == Some("message") {
            self.history.push_back(event);
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
    }
}
