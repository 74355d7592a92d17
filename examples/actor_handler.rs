//! Extending comet with an action handler written as an actor.
//!
//! `Counters` keeps named counters. It runs on an arbiter (thread) of its own, so a busy
//! handler never slows down connections, and it is registered for three routes. It also
//! listens to a channel server-side, as jii's `on('channel:…')` did.
//!
//! ```text
//! cargo run --example actor_handler
//! # in a WebSocket client connected to ws://127.0.0.1:4102/comet/websocket:
//! action counter/add {"requestUid":"1","name":"clicks","by":2}
//! action counter/get {"requestUid":"2","name":"clicks"}
//! channel clicks anything            # every message on `clicks` adds one
//! ```

use std::collections::HashMap;

use actix::prelude::*;
use actix_web::{App, HttpServer};
use comet::{Action, ActionError, ActionResult, ChannelMessage, Comet};
use serde_json::{json, Value};

/// Named counters.
#[derive(Default)]
struct Counters {
    values: HashMap<String, i64>,
}

impl Actor for Counters {
    type Context = Context<Self>;
}

impl Handler<Action> for Counters {
    type Result = ActionResult;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
        let name = action
            .str_param("name")
            .ok_or_else(|| ActionError::new("bad_params", "`name` is required"))?
            .to_owned();
        match action.route() {
            "counter/add" => {
                let by = action.param("by").and_then(Value::as_i64).unwrap_or(1);
                let value = self.values.entry(name.clone()).or_default();
                *value += by;
                Ok(json!({ "name": name, "value": *value }))
            }
            "counter/get" => Ok(json!({ "name": name, "value": self.values.get(&name) })),
            "counter/reset" => Ok(json!({ "name": name, "was": self.values.remove(&name) })),
            other => Err(ActionError::new("not_found", format!("no route `{other}`"))),
        }
    }
}

/// Every message published on a channel counts one on the counter of that name.
impl Handler<ChannelMessage> for Counters {
    type Result = ();

    fn handle(&mut self, message: ChannelMessage, _: &mut Context<Self>) {
        *self.values.entry(message.channel.to_string()).or_default() += 1;
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arbiter = Arbiter::new();
    let counters = Counters::start_in_arbiter(&arbiter.handle(), |_| Counters::default());

    let comet = Comet::builder()
        .action("counter/add", counters.clone())
        .action("counter/get", counters.clone())
        .action("counter/reset", counters.clone())
        .build()
        .map_err(std::io::Error::other)?;
    comet
        .on_channel("clicks", counters.recipient())
        .await
        .map_err(std::io::Error::other)?;

    let app_comet = comet.clone();
    HttpServer::new(move || App::new().service(app_comet.scope("/comet")))
        .tcp_nodelay(true) // comet writes at once; no 40 ms Nagle delays
        .bind(("127.0.0.1", 4102))?
        .run()
        .await?;
    comet.shutdown().await;
    arbiter.stop();
    Ok(())
}
