//! What a connection may do: the rate limits on its frames, and its namespace's rules
//! and hooks on each subscribe and publish. A namespace without rules (every channel,
//! unless declared otherwise) costs one lookup and nothing else.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use bytestring::ByteString;

use super::Connection;
use crate::auth::{
    unix_now, PublishCheck, PublishRule, PublishVerdict, Refusal, SubscribeCheck, SubscribeRule,
};
use crate::codes::{CloseCode, ErrorCode};
use crate::protocol::{action_error_frame, error_frame, RequestUid, SubscribeOptions};

impl Connection {
    /// Answers a frame over its rate limit; a client refused over `flood_limit` times
    /// within about 10 s is closed with 4002.
    pub(super) fn rate_limited(&mut self, answer: ByteString, ctx: &mut Context<Self>) {
        let limit = self.node.config().limits.flood_limit;
        if limit > 0 && !self.buckets.flood.take() {
            log::info!(
                "connection {} ({}): closed for flooding past its rate limits",
                self.info.id,
                self.info.ip.as_deref().unwrap_or("?")
            );
            self.close(CloseCode::RateLimited, ctx);
        } else {
            self.write(answer, ctx);
        }
    }

    fn refused(&mut self, channel: &str, refusal: Refusal, ctx: &mut Context<Self>) {
        log::debug!(
            "connection {}: `{channel}` refused: {}",
            self.info.id,
            refusal.message
        );
        self.write(
            error_frame(&refusal.code, &refusal.message, Some(channel)),
            ctx,
        );
    }

    /// A `subscribe` frame: rate limit, rules, hook, then the subscription.
    pub(super) fn client_subscribe(
        &mut self,
        channel: &str,
        options: SubscribeOptions,
        ctx: &mut Context<Self>,
    ) {
        if !self.buckets.subscribe.take() {
            let frame = error_frame(
                &ErrorCode::RateLimited,
                "too many subscribes: slow down",
                Some(channel),
            );
            self.rate_limited(frame, ctx);
            return;
        }
        if self.channels.contains(channel) {
            self.subscribe_with(channel, &options, ctx);
            return;
        }
        let node = self.node.clone();
        let security = &node.config().security;
        let namespace = security.namespaces.of(channel);
        if namespace.is_open() {
            self.subscribe_with(channel, &options, ctx);
            return;
        }
        if let Err(refusal) = self.may_subscribe(channel, options.token.as_deref()) {
            self.refused(channel, refusal, ctx);
            return;
        }
        let Some(hook) = namespace.on_subscribe.clone() else {
            self.subscribe_with(channel, &options, ctx);
            return;
        };
        let check = SubscribeCheck {
            connection: self.info.clone(),
            channel: Arc::from(channel),
        };
        let channel = check.channel.clone();
        // Frames after this one wait for the hook, so their order holds.
        ctx.wait(
            hook.call(check, security.hook_timeout)
                .into_actor(self)
                .map(move |verdict, conn, ctx| match verdict {
                    Ok(()) if !conn.closed => conn.subscribe_with(&channel, &options, ctx),
                    Ok(()) => {}
                    Err(refusal) => conn.refused(&channel, refusal, ctx),
                }),
        );
    }

    /// Whether a request that reads a channel (`history`, `presence`, `presence_stats`)
    /// may go on: within the action rate, and from a connection that may subscribe to the
    /// channel (subscribed or not). Answers the refusal to request `uid` itself.
    pub(super) fn may_read(
        &mut self,
        channel: &str,
        uid: &RequestUid,
        ctx: &mut Context<Self>,
    ) -> bool {
        if !self.buckets.action.take() {
            let frame = action_error_frame(uid, &ErrorCode::RateLimited, "too many requests");
            self.rate_limited(frame, ctx);
            return false;
        }
        if let Err(refusal) = self.may_subscribe(channel, None) {
            self.write(
                action_error_frame(uid, &refusal.code, &refusal.message),
                ctx,
            );
            return false;
        }
        true
    }

    /// The namespace's rules for a subscribe.
    pub(super) fn may_subscribe(&self, channel: &str, token: Option<&str>) -> Result<(), Refusal> {
        let security = &self.node.config().security;
        let namespace = security.namespaces.of(channel);
        let user = self.info.user();
        if namespace.subscribe == SubscribeRule::None {
            return Err(Refusal::forbidden(format!(
                "`{channel}`: only the server subscribes connections to this namespace"
            )));
        }
        namespace.user_may_use(channel, user)?;
        let listed = namespace.channel_users(channel).is_some();
        let token_ok = match token {
            None => false,
            Some(token) => {
                let Some(verifier) = &security.tokens else {
                    return Err(Refusal::forbidden(
                        "this server takes no subscription tokens",
                    ));
                };
                verifier
                    .subscription(token, channel, user, unix_now())
                    .map_err(|err| Refusal::forbidden(format!("subscription token: {err}")))?;
                true
            }
        };
        match namespace.subscribe {
            _ if listed || token_ok => Ok(()),
            SubscribeRule::Anyone => Ok(()),
            SubscribeRule::Authenticated if user.is_some() => Ok(()),
            SubscribeRule::Authenticated => Err(Refusal::forbidden(format!(
                "`{channel}` needs an authenticated connection"
            ))),
            SubscribeRule::Token | SubscribeRule::None => Err(Refusal::forbidden(format!(
                "`{channel}` needs a subscription token: subscribe {channel} {{\"token\":\"…\"}}"
            ))),
        }
    }

    /// A `channel` frame: rate limit, rules, hook, then the publish.
    pub(super) fn client_publish(
        &mut self,
        channel: &str,
        payload: Bytes,
        ctx: &mut Context<Self>,
    ) {
        if !self.buckets.publish.take() {
            let frame = error_frame(
                &ErrorCode::RateLimited,
                "too many publishes: slow down",
                Some(channel),
            );
            self.rate_limited(frame, ctx);
            return;
        }
        let node = self.node.clone();
        let security = &node.config().security;
        let namespace = security.namespaces.of(channel);
        if namespace.is_open() {
            self.publish_or_hold(channel, payload, ctx);
            return;
        }
        if let Err(refusal) = self.may_publish(channel, payload.len()) {
            self.refused(channel, refusal, ctx);
            return;
        }
        let Some(hook) = namespace.on_publish.clone() else {
            self.publish_or_hold(channel, payload, ctx);
            return;
        };
        let check = PublishCheck {
            connection: self.info.clone(),
            channel: Arc::from(channel),
            payload,
        };
        let (channel, payload) = (check.channel.clone(), check.payload.clone());
        ctx.wait(
            hook.call(check, security.hook_timeout)
                .into_actor(self)
                .map(move |verdict, conn, ctx| match verdict {
                    PublishVerdict::Allow => conn.publish_or_hold(&channel, payload, ctx),
                    PublishVerdict::Rewrite(rewritten) => {
                        conn.publish_or_hold(&channel, rewritten, ctx)
                    }
                    PublishVerdict::Refuse(refusal) => conn.refused(&channel, refusal, ctx),
                }),
        );
    }

    /// The namespace's rules for a publish.
    fn may_publish(&self, channel: &str, bytes: usize) -> Result<(), Refusal> {
        let namespace = self.node.config().security.namespaces.of(channel);
        let user = self.info.user();
        match namespace.publish {
            PublishRule::Anyone => {}
            PublishRule::Authenticated if user.is_some() => {}
            PublishRule::Authenticated => {
                return Err(Refusal::forbidden(format!(
                    "publishing to `{channel}` needs an authenticated connection"
                )))
            }
            PublishRule::Subscribers if self.channels.contains(channel) => {}
            PublishRule::Subscribers => {
                return Err(Refusal::forbidden(format!(
                    "only subscribers of `{channel}` may publish to it"
                )))
            }
            PublishRule::Server => {
                return Err(Refusal::forbidden(format!(
                    "clients may not publish to `{channel}`: the server does"
                )))
            }
        }
        namespace.user_may_use(channel, user)?;
        match namespace.max_payload_bytes {
            Some(max) if bytes > max => Err(Refusal {
                code: ErrorCode::TooLarge,
                message: format!("a payload of {bytes} bytes exceeds this namespace's {max} bytes"),
            }),
            _ => Ok(()),
        }
    }
}
