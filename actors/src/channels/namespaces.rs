//! Namespaces: what holds for a channel. The namespace of `chat:lobby` is `chat`; a
//! channel without `:` is in the default namespace (`""`). Each namespace says who may
//! subscribe, who may publish from a client, the largest payload, whether `#` makes a
//! user channel, which hooks run, whether its channels keep history, and whether they
//! keep presence (who is subscribed) with join and leave events. Every process of a
//! cluster must declare the same namespaces.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::hooks::{Hook, PublishCheck, Refusal, SubscribeCheck};
use crate::hub::history::HistoryPolicy;

/// Who may subscribe to a namespace's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscribeRule {
    /// Every connection, anonymous ones too (today's behaviour; the default).
    #[default]
    Anyone,
    /// Connections with a user.
    Authenticated,
    /// Only with a subscription token for the channel (`subscribe <ch> {"token":…}`).
    Token,
    /// Nobody from a client: only the server subscribes connections (server API, the
    /// token's `channels` claim).
    None,
}

/// Who may publish to a namespace's channels from a client (the server API and actions
/// always may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishRule {
    /// Every connection (today's behaviour; the default).
    #[default]
    Anyone,
    /// Connections with a user.
    Authenticated,
    /// Connections subscribed to the channel.
    Subscribers,
    /// No client: only the server API and actions.
    Server,
}

macro_rules! named {
    ($rule:ty, $($variant:ident = $name:literal),+) => {
        impl $rule {
            /// The rule's name in config files and flags.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }

        impl FromStr for $rule {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!(
                        "`{other}` is not one of {}",
                        [$($name),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $rule {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(
    SubscribeRule,
    Anyone = "anyone",
    Authenticated = "authenticated",
    Token = "token",
    None = "none"
);
named!(
    PublishRule,
    Anyone = "anyone",
    Authenticated = "authenticated",
    Subscribers = "subscribers",
    Server = "server"
);

/// The rules of one namespace.
///
/// ```
/// use comet_actors::auth::{Namespace, PublishRule, SubscribeRule};
///
/// let chat = Namespace::new()
///     .subscribe(SubscribeRule::Authenticated)
///     .publish(PublishRule::Server);
/// assert!(chat.user_channels);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Who may subscribe.
    pub subscribe: SubscribeRule,
    /// Who may publish from a client.
    pub publish: PublishRule,
    /// Whether `name#u1,u2` is a user channel: only the users listed after `#` may
    /// subscribe to it or publish to it from a client.
    pub user_channels: bool,
    /// The largest payload a client may publish here, in bytes (`None`: only the frame
    /// limit).
    pub max_payload_bytes: Option<usize>,
    /// Asked after the rules allowed a subscribe.
    pub on_subscribe: Option<Hook<SubscribeCheck>>,
    /// Asked after the rules allowed a publish; may rewrite the payload.
    pub on_publish: Option<Hook<PublishCheck>>,
    /// The history each channel keeps (`history_size`, `history_ttl`); `None`: none, and
    /// publishing costs what it always did.
    pub history: Option<HistoryPolicy>,
    /// Whether clients may resume from a position (`subscribe <ch> {"recover":true,…}`).
    /// Needs `history`.
    pub recover: bool,
    /// Whether a new subscriber gets the channel's latest publication right after
    /// `subscribed` (a "latest value" channel: tickers, status). Needs `history`.
    pub send_latest: bool,
    /// Whether each channel keeps its presence: an entry per subscribed connection
    /// (connection, user, info), read with `presence` / `presence_stats`.
    pub presence: bool,
    /// Whether subscribers may ask for join and leave events
    /// (`subscribe <ch> {"joinLeave":true}`). Needs `presence`.
    pub join_leave: bool,
    /// How soon a dead process's entries are gone (`presence_ttl`, whole seconds): each
    /// process refreshes its entries every third of it.
    pub presence_ttl: Duration,
    /// Join and leave events go out only while the channel has at most this many clients
    /// (`None`: always).
    pub join_leave_max_clients: Option<u64>,
    /// Joins and leaves of one process within this window go out together, as one frame
    /// of each kind (`join_leave_window_ms`).
    pub join_leave_window: Duration,
}

/// The default `presence_ttl`.
pub const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(5);

/// The default `join_leave_window_ms`.
pub const DEFAULT_JOIN_LEAVE_WINDOW: Duration = Duration::from_millis(100);

impl Namespace {
    /// A declared namespace's defaults: open to anyone, user channels on.
    pub fn new() -> Namespace {
        Namespace {
            user_channels: true,
            ..Namespace::open()
        }
    }

    /// Everything open, `#` an ordinary character: the default namespace unless declared,
    /// and so today's behaviour for every channel.
    pub fn open() -> Namespace {
        Namespace {
            subscribe: SubscribeRule::Anyone,
            publish: PublishRule::Anyone,
            user_channels: false,
            max_payload_bytes: None,
            on_subscribe: None,
            on_publish: None,
            history: None,
            recover: false,
            send_latest: false,
            presence: false,
            join_leave: false,
            presence_ttl: DEFAULT_PRESENCE_TTL,
            join_leave_max_clients: None,
            join_leave_window: DEFAULT_JOIN_LEAVE_WINDOW,
        }
    }

    /// With this subscribe rule.
    pub fn subscribe(mut self, rule: SubscribeRule) -> Namespace {
        self.subscribe = rule;
        self
    }

    /// With this publish rule.
    pub fn publish(mut self, rule: PublishRule) -> Namespace {
        self.publish = rule;
        self
    }

    /// With user channels on or off.
    pub fn user_channels(mut self, on: bool) -> Namespace {
        self.user_channels = on;
        self
    }

    /// With a payload limit.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Namespace {
        self.max_payload_bytes = Some(bytes);
        self
    }

    /// With an `on_subscribe` hook.
    pub fn on_subscribe(mut self, hook: Hook<SubscribeCheck>) -> Namespace {
        self.on_subscribe = Some(hook);
        self
    }

    /// With an `on_publish` hook.
    pub fn on_publish(mut self, hook: Hook<PublishCheck>) -> Namespace {
        self.on_publish = Some(hook);
        self
    }

    /// With history: `size` publications per channel, kept `ttl` after the last one.
    pub fn history(mut self, size: usize, ttl: std::time::Duration) -> Namespace {
        self.history = Some(HistoryPolicy { size, ttl });
        self
    }

    /// With recovery on or off (needs history).
    pub fn recover(mut self, on: bool) -> Namespace {
        self.recover = on;
        self
    }

    /// With the latest publication sent on subscribe (needs history).
    pub fn send_latest(mut self, on: bool) -> Namespace {
        self.send_latest = on;
        self
    }

    /// With presence on or off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use comet_actors::auth::Namespace;
    ///
    /// let room = Namespace::new()
    ///     .presence(true)
    ///     .join_leave(true)
    ///     .presence_ttl(Duration::from_secs(3));
    /// assert!(room.presence && room.join_leave);
    /// ```
    pub fn presence(mut self, on: bool) -> Namespace {
        self.presence = on;
        self
    }

    /// With join and leave events on or off (needs presence).
    pub fn join_leave(mut self, on: bool) -> Namespace {
        self.join_leave = on;
        self
    }

    /// With this `presence_ttl` (whole seconds count; at least one).
    pub fn presence_ttl(mut self, ttl: Duration) -> Namespace {
        self.presence_ttl = ttl;
        self
    }

    /// Join and leave events only while a channel has at most `clients` clients.
    pub fn join_leave_max_clients(mut self, clients: u64) -> Namespace {
        self.join_leave_max_clients = Some(clients);
        self
    }

    /// With this coalescing window for joins and leaves.
    pub fn join_leave_window(mut self, window: Duration) -> Namespace {
        self.join_leave_window = window;
        self
    }

    /// Whether this namespace has no rule at all (nothing to check on the hot path).
    pub fn is_open(&self) -> bool {
        self.subscribe == SubscribeRule::Anyone
            && self.publish == PublishRule::Anyone
            && !self.user_channels
            && self.max_payload_bytes.is_none()
            && self.on_subscribe.is_none()
            && self.on_publish.is_none()
    }

    /// The users a channel of this namespace is limited to (`news:feed#42,43` → 42, 43),
    /// if it is a user channel.
    pub fn channel_users<'a>(&self, channel: &'a str) -> Option<impl Iterator<Item = &'a str>> {
        if !self.user_channels {
            return None;
        }
        let (_, users) = channel.rsplit_once('#')?;
        Some(users.split(',').filter(|user| !user.is_empty()))
    }

    /// Whether `user` may use `channel` as far as user channels go: yes for channels that
    /// are not user channels, else only for a user listed after `#`.
    pub fn user_may_use(&self, channel: &str, user: Option<&str>) -> Result<(), Refusal> {
        match self.channel_users(channel) {
            None => Ok(()),
            Some(mut users) => match user {
                Some(user) if users.any(|listed| listed == user) => Ok(()),
                _ => Err(Refusal::forbidden(format!(
                    "`{channel}` is a user channel of other users"
                ))),
            },
        }
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::new()
    }
}

/// Every namespace of a node, by name; `""` is the default namespace (channels without
/// `:`), [`Namespace::open`] unless declared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespaces {
    declared: HashMap<String, Namespace>,
    open: OpenNamespace,
}

/// The open namespace, shared by every undeclared name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenNamespace(Namespace);

impl Default for OpenNamespace {
    fn default() -> Self {
        OpenNamespace(Namespace::open())
    }
}

impl Namespaces {
    /// No namespace declared: every channel open.
    pub fn new() -> Namespaces {
        Namespaces::default()
    }

    /// Declares namespace `name` (`""` for the default namespace).
    pub fn declare(&mut self, name: impl Into<String>, namespace: Namespace) -> &mut Self {
        self.declared.insert(name.into(), namespace);
        self
    }

    /// Checks what the fields cannot say alone.
    pub fn validate(&self) -> Result<(), String> {
        for (name, namespace) in &self.declared {
            match namespace.history {
                None if namespace.recover || namespace.send_latest => {
                    return Err(format!(
                        "namespace `{name}`: recover and send_latest need history_size"
                    ))
                }
                Some(history) if history.size == 0 || history.ttl.is_zero() => {
                    return Err(format!(
                        "namespace `{name}`: history_size and history_ttl must be above zero"
                    ))
                }
                _ => {}
            }
            if namespace.join_leave && !namespace.presence {
                return Err(format!("namespace `{name}`: join_leave needs presence"));
            }
            if namespace.presence && namespace.presence_ttl < Duration::from_secs(1) {
                return Err(format!(
                    "namespace `{name}`: presence_ttl must be at least one second"
                ));
            }
        }
        Ok(())
    }

    /// Whether any namespace has a rule.
    pub fn any_rules(&self) -> bool {
        self.declared.values().any(|ns| !ns.is_open())
    }

    /// The shortest `presence_ttl` of a namespace with presence, if any has it.
    pub fn shortest_presence_ttl(&self) -> Option<Duration> {
        self.declared
            .values()
            .filter(|ns| ns.presence)
            .map(|ns| ns.presence_ttl)
            .min()
    }

    /// The declared namespaces' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.declared.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The namespace of `channel`.
    pub fn of(&self, channel: &str) -> &Namespace {
        let name = channel.split_once(':').map_or("", |(name, _)| name);
        self.declared
            .get(name)
            .or_else(|| self.declared.get("").filter(|_| !channel.contains(':')))
            .unwrap_or(&self.open.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_find_their_namespace() {
        let mut all = Namespaces::new();
        all.declare("chat", Namespace::new().publish(PublishRule::Server));
        assert_eq!(all.of("chat:lobby").publish, PublishRule::Server);
        assert_eq!(all.of("lobby").publish, PublishRule::Anyone);
        assert_eq!(all.of("news:x").publish, PublishRule::Anyone);
        all.declare("", Namespace::new().subscribe(SubscribeRule::None));
        assert_eq!(all.of("lobby").subscribe, SubscribeRule::None);
        // An undeclared namespace is open, not the default namespace's rules.
        assert_eq!(all.of("news:x").subscribe, SubscribeRule::Anyone);
    }

    #[test]
    fn user_channels_list_their_users() {
        let ns = Namespace::new();
        assert!(ns.user_may_use("news:feed", None).is_ok());
        assert!(ns.user_may_use("news:feed#42", Some("42")).is_ok());
        assert!(ns.user_may_use("news:feed#42", Some("43")).is_err());
        assert!(ns.user_may_use("news:feed#42", None).is_err());
        assert!(ns.user_may_use("dm:#a,b", Some("b")).is_ok());
        assert!(ns.user_may_use("dm:#a,b", Some("c")).is_err());
        assert!(ns.user_may_use("dm:#", Some("")).is_err());
        assert!(Namespace::open().user_may_use("x#42", Some("1")).is_ok());
    }

    #[test]
    fn rules_parse_by_name() {
        assert_eq!("token".parse(), Ok(SubscribeRule::Token));
        assert_eq!("server".parse(), Ok(PublishRule::Server));
        assert!("everyone".parse::<SubscribeRule>().is_err());
    }
}
