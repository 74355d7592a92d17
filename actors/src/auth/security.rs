//! A node's security settings: how connections authenticate, how long they may take,
//! the namespaces' permissions and the per-ip limits. Defaults keep everything open, as
//! jii was (see docs/SECURITY.md for the settings to use in production).

use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, BoxFuture, FutureExt};

use crate::auth::hooks::{AuthError, Authenticate, Hook};
use crate::auth::identity::Identity;
use crate::auth::rate_limit::IpLimits;
use crate::auth::token::TokenVerifier;
use crate::auth::unix_now;
use crate::channels::namespaces::Namespaces;
use crate::connections::info::ConnectionInfo;

/// Who may connect and do what.
///
/// ```
/// use comet_actors::auth::{Namespace, PublishRule, Security, TokenVerifier};
///
/// let mut security = Security::default();
/// security.tokens = Some(TokenVerifier::hmac(b"0123456789abcdef0123456789abcdef").unwrap());
/// security.anonymous = false;
/// security.namespaces.declare("chat", Namespace::new().publish(PublishRule::Server));
/// assert!(security.requires_identity());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// Whether a connection without identity may do anything; when false, it must
    /// authenticate first (`?token=` or an `auth` frame within `auth_timeout`). Default
    /// true.
    pub anonymous: bool,
    /// Verifies JWTs (connection and subscription tokens). Default none.
    pub tokens: Option<TokenVerifier>,
    /// Authenticates connections the application's way (a session cookie, an API call);
    /// asked instead of `tokens` when set (it may use a [`TokenVerifier`] itself).
    pub authenticate: Option<Hook<Authenticate>>,
    /// How long a connection that must authenticate may take to send `auth`; then it is
    /// closed with 4103. Default 10 s.
    pub auth_timeout: Duration,
    /// How long before its token's `exp` a connection is sent `refresh` (at most half the
    /// token's remaining life). Default 60 s.
    pub refresh_ahead: Duration,
    /// How long after `exp` a connection that sent no new token is closed with 4102.
    /// Default 10 s.
    pub expiry_grace: Duration,
    /// How long an authenticate, `on_subscribe` or `on_publish` hook may take; then the
    /// answer is "unavailable". Default 5 s.
    pub hook_timeout: Duration,
    /// The namespaces' permissions. Default: every channel open.
    pub namespaces: Namespaces,
    /// Per-ip limits on connections. Default off.
    pub per_ip: IpLimits,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            anonymous: true,
            tokens: None,
            authenticate: None,
            auth_timeout: Duration::from_secs(10),
            refresh_ahead: Duration::from_secs(60),
            expiry_grace: Duration::from_secs(10),
            hook_timeout: Duration::from_secs(5),
            namespaces: Namespaces::new(),
            per_ip: IpLimits::default(),
        }
    }
}

impl Security {
    /// Whether connections can authenticate at all (a token key or a hook is set).
    pub fn can_authenticate(&self) -> bool {
        self.tokens.is_some() || self.authenticate.is_some()
    }

    /// Whether a connection must have a user before it may do anything.
    pub fn requires_identity(&self) -> bool {
        !self.anonymous
    }

    /// Whether nothing at all is restricted: anonymous clients may do everything (today's
    /// behaviour). `cometd` warns when it listens beyond loopback like that.
    pub fn is_open(&self) -> bool {
        self.anonymous && !self.can_authenticate() && !self.namespaces.any_rules()
    }

    /// Authenticates `connection` with `token`: by the hook when one is set, else by the
    /// token key (a token is then required), else anonymously. A token checked by the key
    /// answers at once.
    pub fn authenticate(
        &self,
        connection: Arc<ConnectionInfo>,
        token: Option<String>,
    ) -> BoxFuture<'static, Result<Identity, AuthError>> {
        if let Some(hook) = &self.authenticate {
            return hook.call(Authenticate { connection, token }, self.hook_timeout);
        }
        let result = match (&self.tokens, token) {
            (Some(tokens), Some(token)) => tokens
                .identity(&token, unix_now())
                .map_err(AuthError::Token),
            (Some(_), None) => Err(AuthError::Required),
            (None, _) => Ok(Identity::anonymous()),
        };
        future::ready(result).boxed()
    }

    /// Checks what the fields cannot say alone.
    pub fn validate(&self) -> Result<(), String> {
        if !self.anonymous && !self.can_authenticate() {
            return Err(
                "anonymous connections are off, but no token key or authenticate hook is set: \
                 nobody could connect"
                    .into(),
            );
        }
        if self.auth_timeout.is_zero() {
            return Err("auth_timeout must be above zero".into());
        }
        if self.hook_timeout.is_zero() {
            return Err("hook_timeout must be above zero".into());
        }
        self.namespaces.validate()
    }
}
