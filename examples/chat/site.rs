//! The seed's example actions, so anyone can try the protocol by hand:
//! `site/test` echoes its params; `site/publish` publishes through the server API.

use actix::prelude::*;
use comet::{Action, ActionError, ActionResult, Payload};
use serde_json::json;

/// `site/test`: answers `{"echo": <params>}`. Written as an actor, the way comet handlers
/// usually are.
pub struct SiteTest;

impl Actor for SiteTest {
    type Context = Context<Self>;
}

impl Handler<Action> for SiteTest {
    type Result = ActionResult;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
        Ok(json!({ "echo": action.params() }))
    }
}

/// `site/publish {channel, message}`: publishes `message` (a string as it is, other JSON
/// as its text) to `channel`, and answers `{"published": true, "channel": …}`.
pub async fn publish(action: Action) -> ActionResult {
    let channel = action
        .str_param("channel")
        .ok_or_else(|| ActionError::new("bad_params", "`channel` (a string) is required"))?
        .to_owned();
    let message = action
        .param("message")
        .ok_or_else(|| ActionError::new("bad_params", "`message` is required"))?;
    action
        .node()
        .publish(&channel, Payload::from(message))
        .await
        .map_err(|err| ActionError::new("bad_params", err.to_string()))?;
    Ok(json!({ "published": true, "channel": channel }))
}
