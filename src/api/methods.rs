//! The methods of the HTTP server API, each a call of the node's server API: params in,
//! JSON out (see docs/API.md for every request and answer).

use comet_actors::{ConnectionId, ErrorCode, Payload};
use serde_json::{json, Map, Value};

use super::ApiError;
use crate::Comet;

/// Runs `method` with `params`.
pub(super) async fn run(
    comet: &Comet,
    method: &str,
    params: Map<String, Value>,
) -> Result<Value, ApiError> {
    let params = Params(params);
    match method {
        "publish" => {
            let channel = params.str("channel")?;
            let data = params.data()?;
            comet.publish(channel, Payload::from(data)).await?;
            Ok(json!({}))
        }
        "broadcast" => {
            let channels = params.channels()?;
            let data = Payload::from(params.data()?);
            // Every name first: a bad one refuses the whole call, before anything went.
            for channel in &channels {
                comet_actors::protocol::check_name(channel, comet.config().limits.max_name_bytes)
                    .map_err(|why| {
                    ApiError::new(
                        ErrorCode::BadChannel,
                        format!("invalid channel name `{channel}`: it {why}"),
                    )
                })?;
            }
            let sent: Vec<_> = channels
                .iter()
                .map(|channel| comet.publish(channel, data.clone()))
                .collect();
            for result in futures::future::join_all(sent).await {
                result?;
            }
            Ok(json!({}))
        }
        "subscribe" | "unsubscribe" => {
            let channel = params.str("channel")?;
            let subscribe = method == "subscribe";
            match params.target()? {
                Target::User(user) if subscribe => comet.subscribe_user(user, channel).await?,
                Target::User(user) => comet.unsubscribe_user(user, channel).await?,
                Target::Connection(id) if subscribe => comet.subscribe(&id, channel).await?,
                Target::Connection(id) => comet.unsubscribe(&id, channel).await?,
            }
            Ok(json!({}))
        }
        "disconnect" => {
            match params.target()? {
                Target::User(user) => comet.disconnect_user(user).await?,
                Target::Connection(id) => comet.disconnect(&id).await?,
            }
            Ok(json!({}))
        }
        "history" => {
            let channel = params.str("channel")?;
            let since = params.optional_u64("since")?;
            let limit = params.optional_u64("limit")?.map_or(usize::MAX, |limit| {
                usize::try_from(limit).unwrap_or(usize::MAX)
            });
            Ok(comet.history(channel, since, limit).await?.to_json())
        }
        "presence" => {
            let presence = comet.presence(params.str("channel")?).await?;
            Ok(serde_json::to_value(presence).unwrap_or_else(|_| json!({ "clients": {} })))
        }
        "presence_stats" => {
            let stats = comet.presence_stats(params.str("channel")?).await?;
            Ok(json!({ "clients": stats.clients, "users": stats.users }))
        }
        "channels" => {
            let pattern = params.optional_str("pattern")?;
            let channels: Map<String, Value> = comet
                .channels(pattern)
                .await?
                .into_iter()
                .map(|(name, subscribers)| (name, json!({ "subscribers": subscribers })))
                .collect();
            Ok(json!({ "channels": channels }))
        }
        "info" => {
            let processes = comet.processes().await?;
            Ok(json!({ "processes": processes }))
        }
        other => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no API method `{other}`; there are publish, broadcast, subscribe, \
                 unsubscribe, disconnect, presence, presence_stats, history, channels, info"
            ),
        )),
    }
}

/// Whom `subscribe`, `unsubscribe` and `disconnect` act on.
enum Target<'a> {
    /// Every connection of a user, wherever it is.
    User(&'a str),
    /// One connection, wherever it is.
    Connection(ConnectionId),
}

struct Params(Map<String, Value>);

impl Params {
    fn str(&self, name: &str) -> Result<&str, ApiError> {
        match self.0.get(name) {
            Some(Value::String(text)) => Ok(text),
            Some(_) => Err(ApiError::param(format!("`{name}` must be a string"))),
            None => Err(ApiError::param(format!("`{name}` is missing"))),
        }
    }

    fn optional_str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.str(name).map(Some),
        }
    }

    fn optional_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::param(format!("`{name}` must be a whole number from 0"))),
        }
    }

    /// `data`: any JSON; a string goes out as its text.
    fn data(&self) -> Result<&Value, ApiError> {
        self.0
            .get("data")
            .ok_or_else(|| ApiError::param("`data` is missing"))
    }

    fn channels(&self) -> Result<Vec<String>, ApiError> {
        let wrong = || ApiError::param("`channels` must be a non-empty array of strings");
        let Some(Value::Array(items)) = self.0.get("channels") else {
            return Err(wrong());
        };
        if items.is_empty() {
            return Err(wrong());
        }
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect()
    }

    /// `user` or `connection` (one of them).
    fn target(&self) -> Result<Target<'_>, ApiError> {
        match (self.optional_str("user")?, self.optional_str("connection")?) {
            (Some(user), None) => Ok(Target::User(user)),
            (None, Some(id)) => ConnectionId::parse(id)
                .map(Target::Connection)
                .ok_or_else(|| {
                    ApiError::param(format!(
                        "`connection` must be a connection id (`<process>.<n>`, as `site/whoami` \
                     answers), not `{id}`"
                    ))
                }),
            _ => Err(ApiError::param("give `user` or `connection` (one of them)")),
        }
    }
}
