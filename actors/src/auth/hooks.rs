//! The application's say in who may do what: an authenticate hook for connections, and
//! per namespace an `on_subscribe` and an `on_publish` hook. Each is written as an async
//! fn ([`Hook::from_fn`]) or as an actor handling the message ([`Hook::from_actor`]);
//! either way the connection waits for the answer (frames after it wait too, so their
//! order holds) for at most `hook_timeout`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use actix::{Message, Recipient};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use thiserror::Error;

use crate::auth::identity::Identity;
use crate::auth::token::TokenError;
use crate::codes::{CloseCode, ErrorCode};
use crate::connections::info::ConnectionInfo;

/// Why a connection was not authenticated; each closes it with its code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token, where one is required (4101).
    #[error("authentication required: send `auth <token>` first")]
    Required,
    /// The token was not accepted (4101; 4102 when it expired).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The authenticate hook refused the connection (4100).
    #[error("refused: {0}")]
    Refused(String),
    /// The authenticate hook failed or did not answer in time (1011: try again later).
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The close code that ends a connection refused for this.
    pub fn close_code(&self) -> CloseCode {
        match self {
            AuthError::Required => CloseCode::Unauthorized,
            AuthError::Token(TokenError::Expired) => CloseCode::TokenExpired,
            AuthError::Token(_) => CloseCode::Unauthorized,
            AuthError::Refused(_) => CloseCode::Forbidden,
            AuthError::Unavailable(_) => CloseCode::InternalError,
        }
    }
}

/// A refused subscribe or publish: the error code and sentence the client gets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The code, usually [`ErrorCode::Forbidden`].
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: String,
}

impl Refusal {
    /// A `forbidden` refusal.
    pub fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::Forbidden,
            message: message.into(),
        }
    }
}

/// What the authenticate hook is asked: who is connecting (ip, headers with cookies and
/// `Origin`, query) and the token the client gave, if any (from `?token=` or an `auth`
/// frame). The hook answers an [`Identity`] (perhaps [`Identity::anonymous`]) or a
/// refusal.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Identity, AuthError>")]
pub struct Authenticate {
    /// The connection's request.
    pub connection: Arc<ConnectionInfo>,
    /// The token presented, if any.
    pub token: Option<String>,
}

/// What an `on_subscribe` hook is asked, after the namespace's rules allowed it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Refusal>")]
pub struct SubscribeCheck {
    /// Who asks (with its identity).
    pub connection: Arc<ConnectionInfo>,
    /// The channel.
    pub channel: Arc<str>,
}

/// What an `on_publish` hook is asked, after the namespace's rules allowed it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "PublishVerdict")]
pub struct PublishCheck {
    /// Who publishes (with its identity).
    pub connection: Arc<ConnectionInfo>,
    /// The channel.
    pub channel: Arc<str>,
    /// The payload as the client sent it.
    pub payload: Bytes,
}

/// An `on_publish` hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishVerdict {
    /// Publish the payload as it is.
    Allow,
    /// Publish this payload instead (e.g. with the sender stamped in).
    Rewrite(Bytes),
    /// Do not publish; the client gets the refusal.
    Refuse(Refusal),
}

/// A hook message: what its answer is when the hook fails or is late.
pub trait HookMessage: Message + Send + 'static
where
    Self::Result: Send,
{
    /// The answer that stands for "the hook could not answer: `why`".
    fn unavailable(why: String) -> Self::Result;
}

impl HookMessage for Authenticate {
    fn unavailable(why: String) -> Result<Identity, AuthError> {
        Err(AuthError::Unavailable(why))
    }
}

impl HookMessage for SubscribeCheck {
    fn unavailable(why: String) -> Result<(), Refusal> {
        Err(Refusal {
            code: ErrorCode::Unavailable,
            message: why,
        })
    }
}

impl HookMessage for PublishCheck {
    fn unavailable(why: String) -> PublishVerdict {
        PublishVerdict::Refuse(Refusal {
            code: ErrorCode::Unavailable,
            message: why,
        })
    }
}

type HookFn<M> = dyn Fn(M) -> BoxFuture<'static, <M as Message>::Result> + Send + Sync;

/// An application hook answering `M`: an async fn or an actor. Cheap to clone.
///
/// ```
/// use comet_actors::auth::{Hook, Refusal, SubscribeCheck};
///
/// let only_alice: Hook<SubscribeCheck> = Hook::from_fn(|check: SubscribeCheck| async move {
///     match check.connection.user() {
///         Some("alice") => Ok(()),
///         _ => Err(Refusal::forbidden("only alice")),
///     }
/// });
/// # let _ = only_alice;
/// ```
pub struct Hook<M: HookMessage>(Arc<HookFn<M>>)
where
    M::Result: Send;

impl<M: HookMessage> Hook<M>
where
    M::Result: Send,
{
    /// A hook written as an async fn.
    pub fn from_fn<F, Fut>(f: F) -> Hook<M>
    where
        F: Fn(M) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = M::Result> + Send + 'static,
    {
        Hook(Arc::new(move |message| f(message).boxed()))
    }

    /// A hook written as an actor's handler of `M`.
    pub fn from_actor(actor: Recipient<M>) -> Hook<M> {
        Hook(Arc::new(move |message| {
            let sent = actor.send(message);
            async move {
                sent.await.unwrap_or_else(|err| {
                    M::unavailable(format!("the hook's actor is gone: {err}"))
                })
            }
            .boxed()
        }))
    }

    /// Asks the hook, for at most `limit`.
    pub fn call(&self, message: M, limit: std::time::Duration) -> BoxFuture<'static, M::Result> {
        let answer = (self.0)(message);
        async move {
            tokio::time::timeout(limit, answer)
                .await
                .unwrap_or_else(|_| {
                    M::unavailable(format!(
                        "the hook did not answer within {} ms",
                        limit.as_millis()
                    ))
                })
        }
        .boxed()
    }
}

impl<M: HookMessage> Clone for Hook<M>
where
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Hook(self.0.clone())
    }
}

impl<M: HookMessage> PartialEq for Hook<M>
where
    M::Result: Send,
{
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<M: HookMessage> Eq for Hook<M> where M::Result: Send {}

impl<M: HookMessage> fmt::Debug for Hook<M>
where
    M::Result: Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}
