//! The chat room: who is here, and the actions that speak in the room and in private, as
//! one actor. The room's history (and each private conversation's) is comet's: the
//! namespaces keep it, every publication of `chat/say` and `chat/dm` goes into it, and
//! pages read it with `history` and resume from their position after a reconnection.
//!
//! Every nick is a user id from a token the demo's `/login` signed; the room takes it
//! from [`Action::user`], never from the client's params, so nobody can speak as someone
//! else. Clients cannot publish to the room channel (`chat:lobby`, namespace `chat`:
//! `publish = server`) nor to private channels (`dm:#alice,bob`, namespace `dm`, user
//! channels, `publish = server`): `chat/say` and `chat/dm` publish for them, stamped with
//! the caller's nick.
//!
//! It hears connections leave on the `internal:chat-left` channel (namespace `internal`:
//! no client may subscribe or publish there), where every process of the demo publishes
//! the ids of its connections that go, so that in a cluster the room learns of departures
//! from every process, not only from the one it runs on.

use std::collections::BTreeMap;

use actix::prelude::*;
use comet::{
    Action, ActionError, ActionResult, ChannelMessage, ConnectionEvent, ConnectionId, Node,
};
use serde_json::{json, Value};

/// Longest nickname, in characters.
pub const MAX_NICK: usize = 32;
/// Longest message, in characters.
const MAX_TEXT: usize = 2000;
/// The channel of the room (namespace `chat`).
pub const ROOM: &str = "chat:lobby";
/// The namespace of private conversations: `dm:#alice,bob`, the two nicks sorted.
pub const DM: &str = "dm";
/// The namespace of the demo's own server-only channels.
pub const INTERNAL: &str = "internal";
/// Where every process publishes the id of each of its connections that goes.
const LEFT: &str = "internal:chat-left";

/// Whether `nick` may be a nick: 1 to [`MAX_NICK`] characters, each a letter, a digit,
/// `_`, `-` or `.` (so no space, `,`, `#` or `:`, which would break user channels).
pub fn valid_nick(nick: &str) -> bool {
    let length = nick.chars().count();
    (1..=MAX_NICK).contains(&length)
        && nick
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The private channel of two nicks: `dm:#a,b` with the nicks sorted, a user channel
/// that only `a` and `b` may subscribe to.
pub fn dm_channel(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("{DM}:#{first},{second}")
}

/// The room's state; handles `chat/join`, `chat/who`, `chat/say` and `chat/dm`.
pub struct ChatRoom {
    node: Node,
    /// The connections that joined, with their nick (a user may have several: tabs).
    members: BTreeMap<ConnectionId, String>,
}

impl ChatRoom {
    /// A room publishing through `node`.
    pub fn new(node: Node) -> ChatRoom {
        ChatRoom {
            node,
            members: BTreeMap::new(),
        }
    }

    fn publish(&self, channel: String, event: Value) {
        let published = self.node.publish(&channel, event);
        actix::spawn(async move {
            if let Err(err) = published.await {
                log::warn!("chat: cannot publish to `{channel}`: {err}");
            }
        });
    }

    fn is_here(&self, nick: &str) -> bool {
        self.members.values().any(|member| member == nick)
    }

    /// The caller's nick: its token's user (routes with `require_user` always have one).
    fn caller(action: &Action) -> Result<String, ActionError> {
        action.user().map(str::to_owned).ok_or_else(|| {
            ActionError::new("not_authenticated", "log in first: the nick is the token's")
        })
    }

    fn text(action: &Action) -> Result<String, ActionError> {
        action
            .str_param("text")
            .map(str::trim)
            .filter(|text| !text.is_empty() && text.chars().count() <= MAX_TEXT)
            .map(str::to_owned)
            .ok_or_else(|| {
                ActionError::new(
                    "bad_text",
                    format!("`text` is a string of 1 to {MAX_TEXT} characters"),
                )
            })
    }

    /// `chat/join`: this connection is in the room, under its token's nick.
    fn join(&mut self, action: &Action) -> ActionResult {
        let nick = Self::caller(action)?;
        let first = !self.is_here(&nick);
        self.members
            .insert(action.connection().id.clone(), nick.clone());
        if first {
            self.publish(ROOM.into(), json!({ "type": "join", "nick": nick }));
        }
        Ok(json!({ "nick": nick }))
    }

    /// `chat/say {text}`: a message to the room, from the caller's nick.
    fn say(&mut self, action: &Action) -> Result<Said, ActionError> {
        let nick = Self::caller(action)?;
        let text = Self::text(action)?;
        Ok(Said {
            channel: ROOM.into(),
            event: json!({ "type": "message", "nick": nick, "text": text }),
            answer: json!({ "sent": true }),
        })
    }

    /// `chat/dm {to, text}`: a private message to `to` (who must be here), on their
    /// shared user channel.
    fn dm(&mut self, action: &Action) -> Result<Said, ActionError> {
        let from = Self::caller(action)?;
        let to = action
            .str_param("to")
            .filter(|to| valid_nick(to))
            .ok_or_else(|| ActionError::new("bad_nick", "`to` is the nick to write to"))?
            .to_owned();
        if to == from {
            return Err(ActionError::new("bad_nick", "write to someone else"));
        }
        if !self.is_here(&to) {
            return Err(ActionError::new("not_here", format!("`{to}` is not here")));
        }
        let text = Self::text(action)?;
        let channel = dm_channel(&from, &to);
        Ok(Said {
            answer: json!({ "sent": true, "channel": channel }),
            event: json!({ "type": "dm", "from": from, "to": to, "text": text }),
            channel,
        })
    }

    /// Publishes `said` and answers once it is out, and so in its channel's history
    /// (the namespaces `chat` and `dm` keep one): `unavailable` when the hub could not
    /// take it (e.g. Redis down), in which case nobody got it.
    fn send(&self, said: Said) -> ResponseFuture<ActionResult> {
        let Said {
            channel,
            event,
            answer,
        } = said;
        let published = self.node.publish(&channel, event);
        Box::pin(async move {
            published.await.map(|()| answer).map_err(|err| {
                log::warn!("chat: cannot publish to `{channel}`: {err}");
                ActionError::new("unavailable", format!("not sent: {err}"))
            })
        })
    }

    /// A connection left (on any process): forget it, and say so if it was its nick's
    /// last.
    fn left(&mut self, id: ConnectionId) {
        if let Some(nick) = self.members.remove(&id) {
            if !self.is_here(&nick) {
                self.publish(ROOM.into(), json!({ "type": "leave", "nick": nick }));
            }
        }
    }

    fn who(&self) -> Vec<&str> {
        let mut nicks: Vec<&str> = self.members.values().map(String::as_str).collect();
        nicks.sort_unstable();
        nicks.dedup();
        nicks
    }
}

impl Actor for ChatRoom {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let node = self.node.clone();
        let listener = ctx.address().recipient();
        ctx.spawn(
            async move { node.on_channel(LEFT, listener).await }
                .into_actor(self)
                .map(move |result, _, _| {
                    if let Err(err) = result {
                        log::error!("chat: cannot listen to `{LEFT}`: {err}");
                    }
                }),
        );
        // This process's connections that go, for whichever process holds the room.
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

/// A message that `chat/say` or `chat/dm` publishes, and the action's answer once it is
/// out.
struct Said {
    channel: String,
    event: Value,
    answer: Value,
}

impl Handler<Action> for ChatRoom {
    type Result = ResponseFuture<ActionResult>;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> Self::Result {
        let said = match action.route() {
            "chat/say" => self.say(&action),
            "chat/dm" => self.dm(&action),
            "chat/join" => return answer(self.join(&action)),
            "chat/who" => return answer(Ok(json!({ "nicks": self.who() }))),
            other => {
                return answer(Err(ActionError::new(
                    "not_found",
                    format!("no chat action `{other}`"),
                )))
            }
        };
        match said {
            Ok(said) => self.send(said),
            Err(refused) => answer(Err(refused)),
        }
    }
}

/// An answer that is ready now.
fn answer(result: ActionResult) -> ResponseFuture<ActionResult> {
    Box::pin(std::future::ready(result))
}

impl Handler<ChannelMessage> for ChatRoom {
    type Result = ();

    fn handle(&mut self, message: ChannelMessage, _: &mut Context<Self>) {
        match ConnectionId::parse(&message.payload) {
            Some(id) => self.left(id),
            None => log::warn!("chat: `{LEFT}` carried no connection id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_are_words_without_separators() {
        assert!(valid_nick("alice"));
        assert!(valid_nick("Zoë_2.b-c"));
        assert!(valid_nick(&"x".repeat(MAX_NICK)));
        for bad in [
            "",
            "a b",
            "a,b",
            "a#b",
            "a:b",
            "a\u{0}",
            &"x".repeat(MAX_NICK + 1),
        ] {
            assert!(!valid_nick(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_conversation_has_one_channel_whoever_writes() {
        assert_eq!(dm_channel("bob", "alice"), "dm:#alice,bob");
        assert_eq!(dm_channel("alice", "bob"), "dm:#alice,bob");
    }
}
