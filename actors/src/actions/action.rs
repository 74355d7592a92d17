//! Actions: what an action handler receives ([`Action`]), what it answers
//! ([`ActionResult`]), and how handlers are registered by route ([`Router`]).
//!
//! A handler is user code and usually an actor: implement `Handler<Action>` with
//! `type Result = ActionResult` and register its address. A plain async function works
//! too, through [`handler_fn`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use actix::{MailboxError, Message, Recipient};
use futures::future::{FutureExt, LocalBoxFuture};
use serde_json::{Map, Value};

use crate::actions::queue::ActionCall;
use crate::codes::ErrorCode;
use crate::connections::info::ConnectionInfo;
use crate::node::Node;
use crate::protocol::RequestUid;

/// One action call, handed to the handler of its route.
///
/// ```
/// use actix::prelude::*;
/// use comet_actors::{Action, ActionResult};
/// use serde_json::json;
///
/// /// Answers `{"echo": <params>}`, like the seed's `site/test`.
/// struct SiteTest;
///
/// impl Actor for SiteTest {
///     type Context = Context<Self>;
/// }
///
/// impl Handler<Action> for SiteTest {
///     type Result = ActionResult;
///
///     fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
///         Ok(json!({ "echo": action.params() }))
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Action {
    call: ActionCall,
    node: Node,
}

impl Message for Action {
    type Result = ActionResult;
}

impl Action {
    pub(crate) fn new(call: ActionCall, node: Node) -> Action {
        Action { call, node }
    }

    /// The route called, e.g. `site/test`.
    pub fn route(&self) -> &str {
        &self.call.route
    }

    /// The parameters the client sent (without `requestUid`).
    pub fn params(&self) -> &Map<String, Value> {
        &self.call.params
    }

    /// One parameter by name.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.call.params.get(name)
    }

    /// One string parameter by name.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.param(name).and_then(Value::as_str)
    }

    /// The client's id for this call.
    pub fn request_uid(&self) -> &RequestUid {
        &self.call.request_uid
    }

    /// The calling connection: id, ip, headers, query. It may live on another process.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.call.connection
    }

    /// The caller's user id, if its connection has authenticated (see
    /// [`Router::require_user`] for routes that need one).
    pub fn user(&self) -> Option<&str> {
        self.call.connection.user()
    }

    /// The node running the action: publish, send to connections, and so on.
    pub fn node(&self) -> &Node {
        &self.node
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("route", &self.call.route)
            .field("request_uid", &self.call.request_uid)
            .field("connection", &self.call.connection.id)
            .finish_non_exhaustive()
    }
}

/// What a handler answers: a JSON value (an object gets `requestUid` added; anything else
/// is sent as `{"result": value}`), or an error.
pub type ActionResult = Result<Value, ActionError>;

/// A failed action, sent to the caller as `{"error":{"code":…,"message":…}}`.
///
/// Any `std::error::Error` converts into one (code `handler_failed`), so `?` works in
/// handlers. (That is also why this type does not implement `Error` itself.)
///
/// ```
/// use comet_actors::ActionError;
/// let err = ActionError::new("nick_taken", "that nickname is taken");
/// assert_eq!(err.code().as_str(), "nick_taken");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    code: ErrorCode,
    message: String,
}

impl ActionError {
    /// An error with a code of your own (snake_case, e.g. `nick_taken`) or a built-in one.
    pub fn new(code: &str, message: impl Into<String>) -> ActionError {
        ActionError {
            code: ErrorCode::parse(code),
            message: message.into(),
        }
    }

    /// An error with a built-in code.
    pub fn with_code(code: ErrorCode, message: impl Into<String>) -> ActionError {
        ActionError {
            code,
            message: message.into(),
        }
    }

    /// `handler_failed` with a message.
    pub fn failed(message: impl Into<String>) -> ActionError {
        ActionError::with_code(ErrorCode::HandlerFailed, message)
    }

    /// The error code.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// The message for humans.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActionError {
    fn from(err: E) -> ActionError {
        ActionError::failed(err.to_string())
    }
}

/// Something that runs action calls: an actor's `Recipient<Action>`, or a function
/// wrapped by [`handler_fn`].
pub trait ActionHandler: Send + Sync + 'static {
    /// Runs one call. The future runs on the worker's thread, so it need not be `Send`.
    fn call(&self, action: Action) -> LocalBoxFuture<'static, ActionResult>;
}

impl ActionHandler for Recipient<Action> {
    fn call(&self, action: Action) -> LocalBoxFuture<'static, ActionResult> {
        let sent = self.send(action);
        async move {
            match sent.await {
                Ok(result) => result,
                Err(MailboxError::Closed) => Err(ActionError::failed(
                    "the handler actor is gone (it stopped or panicked)",
                )),
                Err(MailboxError::Timeout) => Err(ActionError::with_code(
                    ErrorCode::Timeout,
                    "the handler actor did not answer in time",
                )),
            }
        }
        .boxed_local()
    }
}

/// A plain async function as an action handler; see [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F, Fut> ActionHandler for FnHandler<F>
where
    F: Fn(Action) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ActionResult> + 'static,
{
    fn call(&self, action: Action) -> LocalBoxFuture<'static, ActionResult> {
        (self.0)(action).boxed_local()
    }
}

/// Wraps an async function as an [`ActionHandler`].
///
/// ```
/// use comet_actors::{handler_fn, Action, Router};
/// use serde_json::json;
///
/// let mut router = Router::new();
/// router.route("chat/nick", handler_fn(|action: Action| async move {
///     let nick = action.str_param("nick").unwrap_or("anonymous").to_owned();
///     Ok(json!({ "nick": nick }))
/// }));
/// assert!(router.get("chat/nick").is_some());
/// ```
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Action) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ActionResult> + 'static,
{
    FnHandler(f)
}

/// Action handlers by route.
#[derive(Clone, Default)]
pub struct Router {
    handlers: HashMap<String, Arc<dyn ActionHandler>>,
    /// Routes that only an authenticated caller (a connection with a user) may call.
    authenticated: std::collections::HashSet<String>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers `handler` for `route`, replacing any earlier one.
    pub fn route(&mut self, route: impl Into<String>, handler: impl ActionHandler) -> &mut Self {
        self.handlers.insert(route.into(), Arc::new(handler));
        self
    }

    /// Makes `route` answer `not_authenticated` to callers without a user, before its
    /// handler runs.
    pub fn require_user(&mut self, route: impl Into<String>) -> &mut Self {
        self.authenticated.insert(route.into());
        self
    }

    /// Whether `route` needs an authenticated caller.
    pub fn requires_user(&self, route: &str) -> bool {
        self.authenticated.contains(route)
    }

    /// The handler of `route`.
    pub fn get(&self, route: &str) -> Option<Arc<dyn ActionHandler>> {
        self.handlers.get(route).cloned()
    }

    /// Every route, sorted.
    pub fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self.handlers.keys().cloned().collect();
        routes.sort();
        routes
    }

    /// Whether no route is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes())
            .finish()
    }
}
