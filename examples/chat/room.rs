//! The chat room: the actions that speak in the room and in private, as one actor. Who is
//! here is comet's presence (namespace `chat` has `presence` and `join_leave`): every page
//! subscribed to the room is an entry, on whichever process; pages read the list with
//! `presence` and follow it with join and leave events, and `chat/dm` asks it whether the
//! addressee is here. The room's history (and each private conversation's) is comet's
//! too: the namespaces keep it, every publication of `chat/say` and `chat/dm` goes into
//! it, and pages read it with `history` and resume from their position after a
//! reconnection. So the room keeps no state of its own, and any number of processes may
//! run it.
//!
//! Every nick is a user id from a token the demo's `/login` signed; the room takes it
//! from [`Action::user`], never from the client's params, so nobody can speak as someone
//! else. Clients cannot publish to the room channel (`chat:lobby`, namespace `chat`:
//! `publish = server`) nor to private channels (`dm:#alice,bob`, namespace `dm`, user
//! channels, `publish = server`): `chat/say` and `chat/dm` publish for them, stamped with
//! the caller's nick.

use actix::prelude::*;
use comet::{Action, ActionError, ActionResult, Node};
use serde_json::{json, Value};

/// Longest nickname, in characters.
pub const MAX_NICK: usize = 32;
/// Longest message, in characters.
const MAX_TEXT: usize = 2000;
/// The channel of the room (namespace `chat`).
pub const ROOM: &str = "chat:lobby";
/// The namespace of private conversations: `dm:#alice,bob`, the two nicks sorted.
pub const DM: &str = "dm";

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

/// The room; handles `chat/say` and `chat/dm`.
pub struct ChatRoom {
    node: Node,
}

impl ChatRoom {
    /// A room publishing through `node`.
    pub fn new(node: Node) -> ChatRoom {
        ChatRoom { node }
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

    /// `chat/say {text}`: a message to the room, from the caller's nick.
    fn say(&mut self, action: &Action) -> Result<Said, ActionError> {
        let nick = Self::caller(action)?;
        let text = Self::text(action)?;
        Ok(Said {
            channel: ROOM.into(),
            event: json!({ "type": "message", "nick": nick, "text": text }),
            answer: json!({ "sent": true }),
            only_if_here: None,
        })
    }

    /// `chat/dm {to, text}`: a private message to `to` (who must be here: subscribed to
    /// the room, on any process), on their shared user channel.
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
        let text = Self::text(action)?;
        let channel = dm_channel(&from, &to);
        Ok(Said {
            answer: json!({ "sent": true, "channel": channel }),
            event: json!({ "type": "dm", "from": from, "to": to, "text": text }),
            channel,
            only_if_here: Some(to),
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
            only_if_here,
        } = said;
        let node = self.node.clone();
        Box::pin(async move {
            if let Some(to) = only_if_here {
                let here = node.presence(ROOM).await.map_err(|err| {
                    ActionError::new("unavailable", format!("who is here is unknown: {err}"))
                })?;
                if !here
                    .clients
                    .values()
                    .any(|entry| entry.user.as_deref() == Some(to.as_str()))
                {
                    return Err(ActionError::new("not_here", format!("`{to}` is not here")));
                }
            }
            node.publish(&channel, event)
                .await
                .map(|()| answer)
                .map_err(|err| {
                    log::warn!("chat: cannot publish to `{channel}`: {err}");
                    ActionError::new("unavailable", format!("not sent: {err}"))
                })
        })
    }
}

impl Actor for ChatRoom {
    type Context = Context<Self>;
}

/// A message that `chat/say` or `chat/dm` publishes, and the action's answer once it is
/// out.
struct Said {
    channel: String,
    event: Value,
    answer: Value,
    /// Sent only if this user is in the room (`chat/dm`).
    only_if_here: Option<String>,
}

impl Handler<Action> for ChatRoom {
    type Result = ResponseFuture<ActionResult>;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> Self::Result {
        let said = match action.route() {
            "chat/say" => self.say(&action),
            "chat/dm" => self.dm(&action),
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
