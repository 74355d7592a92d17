//! The Redis queue's dead letters: entries a process took but cannot read (bad JSON, not
//! UTF-8, nested deeper than serde_json reads) are set aside in `P dead` (on a Redis
//! Cluster, per route: `P{r:<route>}dead`, same bounds) for an operator,
//! never retried, and their caller is answered at once when it can be found.
//!
//! An entry that does not decode as a whole is often still readable in part: the
//! caller's connection id and `requestUid` are read with everything else skipped (without
//! a depth limit, so deep params do not hide them). Then the caller gets
//! `action {"requestUid":…,"error":{"code":"bad_json",…}}` at once, in the same atomic
//! step that sets the entry aside, instead of waiting `action_timeout` for nothing.
//!
//! The list is bounded: at most `dead_letters_max` entries (the oldest go first), and it
//! goes `dead_letters_ttl` after the last entry was set aside. Every process counts the
//! entries it set aside ([`RedisQueue::dead_letters`](crate::RedisQueue::dead_letters)).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use super::Reply;
use crate::codes::ErrorCode;
use crate::config::RedisConfig;
use crate::connections::info::ConnectionId;
use crate::hub::process_message::ProcessMessage;
use crate::hub::HubNames;
use crate::protocol::{action_error_frame, RequestUid};

/// The parts of a queued call needed to answer it; everything else is skipped.
#[derive(Deserialize)]
struct Caller {
    #[serde(rename = "requestUid")]
    request_uid: RequestUid,
    connection: CallerConnection,
}

#[derive(Deserialize)]
struct CallerConnection {
    id: ConnectionId,
}

/// The answer for the caller of an unreadable entry, if the entry names one, on the
/// caller's process channel as `names` name it.
pub(super) fn answer(names: &HubNames, entry: &[u8], why: &str) -> Option<Reply> {
    let caller: Caller = serde_json::from_slice(entry).ok()?;
    let frame = action_error_frame(
        &caller.request_uid,
        &ErrorCode::BadJson,
        &format!("the process that took the call cannot read it ({why})"),
    );
    let channel = names.process(caller.connection.id.process());
    let message = ProcessMessage::Answer {
        to: caller.connection.id,
        request_uid: caller.request_uid,
        frame: frame.to_string(),
    };
    let payload = message.encode().ok()?;
    Some(Reply {
        channel,
        payload: payload.into(),
    })
}

/// The commands that set `entry` aside on one Redis: out of `processing`, into `dead`
/// (`P dead`, trimmed to its bounds), with the caller's answer if any; to run as one
/// atomic pipeline.
pub(super) fn set_aside(
    dead: &str,
    processing: &str,
    entry: &[u8],
    answer: Option<&Reply>,
    config: &RedisConfig,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("LREM")
        .arg(processing)
        .arg(1)
        .arg(entry)
        .ignore()
        .cmd("RPUSH")
        .arg(dead)
        .arg(entry)
        .ignore();
    trim(&mut pipe, dead, config);
    if let Some(answer) = answer {
        pipe.cmd("PUBLISH")
            .arg(&answer.channel)
            .arg(answer.payload.as_ref())
            .ignore();
    }
    pipe
}

/// Keeps `P dead` within its bounds: the newest `dead_letters_max` entries, for
/// `dead_letters_ttl` after this addition.
fn trim(pipe: &mut redis::Pipeline, dead: &str, config: &RedisConfig) {
    let max = config.dead_letters_max.max(1) as i64;
    pipe.cmd("LTRIM")
        .arg(dead)
        .arg(-max)
        .arg(-1)
        .ignore()
        .cmd("PEXPIRE")
        .arg(dead)
        .arg(ttl_ms(config))
        .ignore();
}

/// `dead_letters_ttl` in ms, at least 1 (0 would delete the list at once).
pub(super) fn ttl_ms(config: &RedisConfig) -> u64 {
    (config.dead_letters_ttl.as_millis() as u64).max(1)
}

/// Entries this process set aside, for a metric.
#[derive(Debug, Default)]
pub(super) struct DeadCount(AtomicU64);

impl DeadCount {
    /// `n` more entries set aside.
    pub(super) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// How many so far.
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
