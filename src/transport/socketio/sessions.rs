//! The long-polling sessions of one endpoint by sid, shared by every worker thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::Addr;

use super::session::Session;

/// The sessions of one endpoint by sid, shared by every worker thread.
#[derive(Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<HashMap<Arc<str>, Addr<Session>>>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Addr<Session>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live session `sid`.
    pub(crate) fn find(&self, sid: &str) -> Option<Addr<Session>> {
        self.lock()
            .get(sid)
            .filter(|addr| addr.connected())
            .cloned()
    }

    /// Adds a session; false if `max` are open already.
    pub(crate) fn insert(&self, sid: Arc<str>, session: Addr<Session>, max: usize) -> bool {
        let mut sessions = self.lock();
        if sessions.len() >= max {
            return false;
        }
        sessions.insert(sid, session);
        true
    }

    /// Whether there is room for one more session.
    pub(crate) fn has_room(&self, max: usize) -> bool {
        self.lock().len() < max
    }

    pub(super) fn remove(&self, sid: &str, session: &Addr<Session>) {
        let mut sessions = self.lock();
        if sessions.get(sid) == Some(session) {
            sessions.remove(sid);
        }
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
