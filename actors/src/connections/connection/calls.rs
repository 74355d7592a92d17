//! A connection's action calls: each waits for its answer under a timer, at most
//! `max_pending_actions` wait, at most `max_running_actions_per_connection` are in the
//! queue or running, and the rest wait here in order.

use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;

use super::Connection;
use crate::actions::queue::{unix_millis, ActionCall, QueueError};
use crate::codes::ErrorCode;
use crate::node::NodeError;
use crate::protocol::{action_error_frame, ActionRequest, RequestUid};

/// How much longer than `action_timeout` the connection waits before it answers
/// `timeout` itself: the worker's own timeout answer should normally come first.
const ANSWER_GRACE: Duration = Duration::from_millis(500);

impl Connection {
    /// An `action` frame from the client: rate-limited, then called.
    pub(super) fn client_call(&mut self, request: ActionRequest, ctx: &mut Context<Self>) {
        if !self.buckets.action.take() {
            let frame = action_error_frame(
                &request.request_uid,
                &ErrorCode::RateLimited,
                "too many action calls: slow down",
            );
            self.rate_limited(frame, ctx);
            return;
        }
        self.call(request, ctx);
    }

    fn call(&mut self, request: ActionRequest, ctx: &mut Context<Self>) {
        let uid = request.request_uid;
        let max = self.node.config().limits.max_pending_actions;
        if self.pending.contains_key(&uid) {
            let message = "a call with this requestUid is already pending";
            self.write(action_error_frame(&uid, &ErrorCode::BadFrame, message), ctx);
            return;
        }
        if self.pending.len() >= max {
            let message = format!("at most {max} action calls may be pending per connection");
            self.write(
                action_error_frame(&uid, &ErrorCode::TooManyPending, &message),
                ctx,
            );
            return;
        }
        let timeout = self.node.config().action_timeout;
        let call = ActionCall {
            id: uuid::Uuid::new_v4().simple().to_string(),
            route: request.route,
            request_uid: uid.clone(),
            params: request.params,
            connection: (*self.info).clone(),
            deadline_ms: unix_millis() + timeout.as_millis() as u64,
        };
        log::debug!(
            "connection {}: action `{}` ({uid})",
            self.info.id,
            call.route
        );
        let timer_uid = uid.clone();
        let timer = ctx.run_later(timeout + ANSWER_GRACE, move |conn, ctx| {
            if conn.pending.remove(&timer_uid).is_some() {
                conn.waiting.retain(|call| call.request_uid != timer_uid);
                conn.finished(&timer_uid, ctx);
                let message = format!("no answer within {} ms", timeout.as_millis());
                conn.write(
                    action_error_frame(&timer_uid, &ErrorCode::Timeout, &message),
                    ctx,
                );
            }
        });
        self.pending.insert(uid, timer);
        if self.running.len() < self.max_running() {
            self.enqueue(call, ctx);
        } else {
            self.waiting.push_back(call);
        }
    }

    /// An answer came for call `request_uid`.
    pub(super) fn answered(
        &mut self,
        request_uid: RequestUid,
        frame: String,
        ctx: &mut Context<Self>,
    ) {
        match self.pending.remove(&request_uid) {
            Some(timer) => {
                ctx.cancel_future(timer);
                self.finished(&request_uid, ctx);
                self.write(ByteString::from(frame), ctx);
            }
            None => log::debug!(
                "connection {}: dropped a late answer to {request_uid}",
                self.info.id
            ),
        }
    }

    /// The bound on this connection's calls in the queue or running.
    fn max_running(&self) -> usize {
        self.node
            .config()
            .limits
            .max_running_actions_per_connection
            .max(1)
    }

    /// A pending call is answered (or given up): the next waiting ones take its place.
    fn finished(&mut self, uid: &RequestUid, ctx: &mut Context<Self>) {
        self.running.remove(uid);
        while self.running.len() < self.max_running() {
            let Some(call) = self.waiting.pop_front() else {
                break;
            };
            // Past its deadline, no worker would run it: its timer answers `timeout`.
            if !call.is_expired() {
                self.enqueue(call, ctx);
            }
        }
    }

    /// Puts a call on the queue; a refusal answers it at once.
    fn enqueue(&mut self, call: ActionCall, ctx: &mut Context<Self>) {
        let uid = call.request_uid.clone();
        self.running.insert(uid.clone());
        let route = call.route.clone();
        ctx.spawn(
            self.node
                .enqueue(call)
                .into_actor(self)
                .map(move |result, conn, ctx| {
                    let Err(err) = result else { return };
                    let (code, message) = match err {
                        NodeError::Queue(QueueError::NotServed(_)) => (
                            ErrorCode::NotFound,
                            format!("no handler for action `{route}`"),
                        ),
                        other => {
                            log::warn!("action `{route}` could not be queued: {other}");
                            (
                                ErrorCode::Unavailable,
                                format!("action not queued: {other}"),
                            )
                        }
                    };
                    if let Some(timer) = conn.pending.remove(&uid) {
                        ctx.cancel_future(timer);
                        conn.finished(&uid, ctx);
                        conn.write(action_error_frame(&uid, &code, &message), ctx);
                    }
                }),
        );
    }
}
