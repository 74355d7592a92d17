//! Who a connection is: authenticating at connect (`?token=`, or an authenticate hook
//! with the request's cookies), waiting for a first `auth` where identity is required,
//! refreshing in band before the token's `exp`, and closing it when no new token came.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;

use super::Connection;
use crate::auth::{unix_now, AuthError, Identity, TokenError};
use crate::codes::{CloseCode, ErrorCode};
use crate::connections::directory::{Register, Reidentify, Watch};
use crate::protocol::{authenticated_frame, check_name, error_frame, refresh_frame};

/// Where a connection stands with its identity.
#[derive(Default)]
pub(super) struct Standing {
    /// It has an identity (perhaps anonymous) and may send every frame.
    open: bool,
    /// The directory knows it (from its first identity on).
    registered: bool,
    /// Closes it if no `auth` comes in time.
    auth_timer: Option<SpawnHandle>,
    /// Sends `refresh` ahead of `exp`.
    refresh_timer: Option<SpawnHandle>,
    /// Closes it at `exp` plus the grace.
    expiry_timer: Option<SpawnHandle>,
}

impl Standing {
    pub(super) fn is_open(&self) -> bool {
        self.open
    }
}

impl Connection {
    /// Counts the connection against its ip's limits; false if it was refused (and is
    /// closing).
    pub(super) fn count_ip(&mut self, ctx: &mut Context<Self>) -> bool {
        let limiter = self.node.ip_limiter();
        let Some(ip) = self.info.ip.clone().filter(|_| limiter.is_limited()) else {
            return true;
        };
        match limiter.acquire(&ip) {
            Ok(()) => {
                self.counted_ip = Some(ip);
                true
            }
            Err(why) => {
                log::info!(
                    "connection {}: refused, {ip} is over its connection limit ({why:?})",
                    self.info.id
                );
                self.close(CloseCode::TooManyConnections, ctx);
                false
            }
        }
    }

    /// The identity at connect: from `?token=`, from the authenticate hook, anonymous, or
    /// none yet (then only `auth` is taken, for `auth_timeout`).
    pub(super) fn begin_identity(&mut self, ctx: &mut Context<Self>) {
        let security = &self.node.config().security;
        if !security.can_authenticate() {
            self.identified(Identity::anonymous(), false, ctx);
            return;
        }
        let token = self.info.query_param("token");
        if token.is_some() {
            // The token is the connection's secret: it does not travel on with the
            // request's query (into action calls, the queue, logs).
            let mut info = (*self.info).clone();
            info.query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(
                    form_urlencoded::parse(info.query.as_bytes()).filter(|(key, _)| key != "token"),
                )
                .finish();
            self.info = Arc::new(info);
        }
        if token.is_none() && security.authenticate.is_none() {
            if security.anonymous {
                self.identified(Identity::anonymous(), false, ctx);
            } else {
                self.await_auth(ctx);
            }
            return;
        }
        self.authenticate(token, false, ctx);
    }

    /// An `auth <token>` frame.
    pub(super) fn auth(&mut self, token: String, ctx: &mut Context<Self>) {
        self.authenticate(Some(token), true, ctx);
    }

    /// Asks the node's authenticator. A token checked here (JWT) answers at once; a hook
    /// may take time, and the connection handles nothing else meanwhile, so frames that
    /// follow see the new identity.
    fn authenticate(&mut self, token: Option<String>, from_frame: bool, ctx: &mut Context<Self>) {
        let mut check = self
            .node
            .config()
            .security
            .authenticate(self.info.clone(), token);
        match (&mut check).now_or_never() {
            Some(result) => self.authenticated(result, from_frame, ctx),
            None => {
                ctx.wait(
                    check
                        .into_actor(self)
                        .map(move |result, conn, ctx| conn.authenticated(result, from_frame, ctx)),
                );
            }
        }
    }

    fn authenticated(
        &mut self,
        result: Result<Identity, AuthError>,
        from_frame: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.closed {
            return;
        }
        let anonymous_ok = self.node.config().security.anonymous;
        if !self.standing.open {
            match result {
                Ok(identity) if identity.is_authenticated() || anonymous_ok => {
                    self.identified(identity, from_frame, ctx)
                }
                // The hook knows nobody, and somebody is required: wait for `auth`.
                Ok(_) if !from_frame => self.await_auth(ctx),
                Ok(_) => self.refuse(AuthError::Required, ctx),
                Err(err) => self.refuse(err, ctx),
            }
            return;
        }
        // In band, on a connection with an identity: a refresh, or an anonymous
        // connection signing in. It cannot become another user.
        match result {
            Ok(identity) => {
                let current = self.info.identity.user.as_deref();
                if current.is_some() && identity.user.as_deref() != current {
                    let message = "the token is for another user: reconnect to change users";
                    self.write(error_frame(&ErrorCode::Unauthorized, message, None), ctx);
                } else if !identity.is_authenticated() && !anonymous_ok {
                    self.refuse(AuthError::Required, ctx);
                } else {
                    self.identified(identity, true, ctx);
                }
            }
            Err(err) => {
                log::debug!("connection {}: in-band auth failed: {err}", self.info.id);
                let message = format!("{err}; the connection keeps its earlier identity");
                self.write(error_frame(&ErrorCode::Unauthorized, &message, None), ctx);
            }
        }
    }

    /// The connection has `identity`: tell the directory, arm the expiry, answer, and
    /// subscribe what the token grants.
    fn identified(&mut self, identity: Identity, answer: bool, ctx: &mut Context<Self>) {
        if let Some(timer) = self.standing.auth_timer.take() {
            ctx.cancel_future(timer);
        }
        let new_user = !self.standing.registered || self.info.identity.user != identity.user;
        let grants = if new_user {
            identity.channels.clone()
        } else {
            Vec::new()
        };
        if let Some(user) = &identity.user {
            log::debug!("connection {}: authenticated as `{user}`", self.info.id);
        }
        let changed = self.info.identity != identity;
        let mut info = (*self.info).clone();
        info.identity = identity;
        self.info = Arc::new(info);
        if !self.standing.registered {
            self.standing.registered = true;
            self.node.directory().do_send(Register {
                info: self.info.clone(),
                messages: ctx.address().recipient(),
                close: ctx.address().recipient(),
            });
        } else if changed {
            self.node.directory().do_send(Reidentify(self.info.clone()));
            self.reenter_presence();
        }
        self.standing.open = true;
        self.arm_expiry(ctx);
        if answer {
            let identity = &self.info.identity;
            let frame = authenticated_frame(
                identity.user.as_deref(),
                identity.expires_at,
                self.info.id.as_str(),
            );
            self.write(frame, ctx);
        }
        let max_name = self.node.config().limits.max_name_bytes;
        for channel in grants {
            match check_name(&channel, max_name) {
                Ok(()) => self.subscribe(&channel, ctx),
                Err(why) => log::warn!(
                    "connection {}: the token's channel `{channel}` {why}; not subscribed",
                    self.info.id
                ),
            }
        }
    }

    /// Sends `refresh` ahead of the identity's `exp`, and closes with 4102 at `exp` plus
    /// the grace; a new identity re-arms both.
    fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        for timer in [
            self.standing.refresh_timer.take(),
            self.standing.expiry_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            ctx.cancel_future(timer);
        }
        let Some(exp) = self.info.identity.expires_at else {
            return;
        };
        let security = &self.node.config().security;
        let left = Duration::from_secs(exp.saturating_sub(unix_now()));
        let ahead = security.refresh_ahead.min(left / 2);
        let grace = security.expiry_grace;
        self.standing.refresh_timer = Some(ctx.run_later(left - ahead, move |conn, ctx| {
            let in_ms = u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX);
            conn.write(refresh_frame(exp, in_ms), ctx);
        }));
        self.standing.expiry_timer = Some(ctx.run_later(left + grace, |conn, ctx| {
            conn.refuse(AuthError::Token(TokenError::Expired), ctx);
        }));
    }

    /// Only `auth` is taken now, for `auth_timeout`.
    fn await_auth(&mut self, ctx: &mut Context<Self>) {
        // Not in the directory yet, but closed with the others on shutdown.
        self.node.directory().do_send(Watch {
            id: self.info.id.clone(),
            close: ctx.address().recipient(),
        });
        let timeout = self.node.config().security.auth_timeout;
        self.standing.auth_timer = Some(ctx.run_later(timeout, move |conn, ctx| {
            let message = format!("no `auth` within {} ms", timeout.as_millis());
            conn.end(
                CloseCode::AuthTimeout,
                ErrorCode::Unauthorized,
                &message,
                ctx,
            );
        }));
    }

    /// Ends the connection for `err`: an error frame that says why, then its close code.
    pub(super) fn refuse(&mut self, err: AuthError, ctx: &mut Context<Self>) {
        let code = match err {
            AuthError::Refused(_) => ErrorCode::Forbidden,
            AuthError::Unavailable(_) => ErrorCode::Unavailable,
            AuthError::Required | AuthError::Token(_) => ErrorCode::Unauthorized,
        };
        self.end(err.close_code(), code, &err.to_string(), ctx);
    }

    fn end(&mut self, close: CloseCode, code: ErrorCode, message: &str, ctx: &mut Context<Self>) {
        log::info!(
            "connection {} ({}): closed with {}: {message}",
            self.info.id,
            self.info.ip.as_deref().unwrap_or("?"),
            close.code()
        );
        self.write(error_frame(&code, message, None), ctx);
        self.close(close, ctx);
    }
}
