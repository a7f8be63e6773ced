//! Legacy (2025-era) sessions: minted at `initialize`, carried in `Mcp-Session-Id`.
//!
//! Decisions:
//! - An id is 256 bits from the OS CSPRNG in URL-safe Base64 (visible ASCII, as the transport
//!   requires). It is a handle, never a credential: every request is still authenticated, and a
//!   session answers only to the key that created it. Any other key gets the same `404` as an
//!   unknown id, so a key holder cannot learn which ids exist.
//! - A session expires after a period without requests (`--session-idle-secs`); an expired
//!   session is gone (404), and a background task sweeps expired entries so memory does not
//!   hold them until the next lookup.
//! - The number of live sessions is capped (`--max-sessions`). When the cap is reached, expired
//!   sessions are swept first; if it is still full, `initialize` is refused with 503 rather than
//!   evicting a live session, so one client cannot push others out.
//! - Time comes from `tokio::time`, so expiry is tested with a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::RpcError;
use crate::keys;
use crate::mcp::version::ProtocolVersion;
use crate::security::auth::KeyId;

#[derive(Debug, Clone)]
struct Session {
    key_id: KeyId,
    version: ProtocolVersion,
    last_seen: Instant,
}

/// The live sessions.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
    idle_timeout: Duration,
    max_sessions: usize,
}

impl SessionStore {
    pub fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle_timeout,
            max_sessions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic while the lock was held cannot leave the map half-updated (every update is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mints a session for `key_id` at the negotiated `version`.
    pub fn create(
        &self,
        key_id: KeyId,
        version: ProtocolVersion,
        now: Instant,
    ) -> Result<String, RpcError> {
        let id = keys::random_token(32).map_err(|_| RpcError::Internal)?;
        let mut sessions = self.lock();
        if sessions.len() >= self.max_sessions {
            let idle = self.idle_timeout;
            sessions.retain(|_, s| now.saturating_duration_since(s.last_seen) < idle);
            if sessions.len() >= self.max_sessions {
                return Err(RpcError::SessionLimit);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                key_id,
                version,
                last_seen: now,
            },
        );
        Ok(id)
    }

    /// Looks a session up for `key_id` and marks it used; returns its negotiated version.
    pub fn touch(
        &self,
        id: &str,
        key_id: &KeyId,
        now: Instant,
    ) -> Result<ProtocolVersion, RpcError> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id).ok_or(RpcError::SessionNotFound)?;
        if session.key_id != *key_id {
            return Err(RpcError::SessionNotFound);
        }
        if now.saturating_duration_since(session.last_seen) >= self.idle_timeout {
            sessions.remove(id);
            return Err(RpcError::SessionNotFound);
        }
        session.last_seen = now;
        Ok(session.version)
    }

    /// Ends a session (HTTP DELETE); only its own key may end it.
    pub fn remove(&self, id: &str, key_id: &KeyId) -> Result<(), RpcError> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.key_id == *key_id => {
                sessions.remove(id);
                Ok(())
            }
            _ => Err(RpcError::SessionNotFound),
        }
    }

    /// Drops every expired session; returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut sessions = self.lock();
        let before = sessions.len();
        let idle = self.idle_timeout;
        sessions.retain(|_, s| now.saturating_duration_since(s.last_seen) < idle);
        before - sessions.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps expired sessions in the background, at a tenth of the idle timeout (at least
    /// every second).
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        let every = (self.idle_timeout / 10).max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                match store.upgrade() {
                    Some(store) => {
                        store.sweep(Instant::now());
                    }
                    None => break,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: ProtocolVersion = ProtocolVersion::V2025_11_25;

    fn alice() -> KeyId {
        KeyId::new("alice")
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_expire_after_idle_timeout_and_use_refreshes_them() {
        let store = SessionStore::new(Duration::from_secs(60), 10);
        let id = store.create(alice(), V, Instant::now()).expect("create");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(store.touch(&id, &alice(), Instant::now()), Ok(V));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(store.touch(&id, &alice(), Instant::now()), Ok(V));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            store.touch(&id, &alice(), Instant::now()),
            Err(RpcError::SessionNotFound)
        );
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_removes_expired_sessions_without_a_lookup() {
        let store = Arc::new(SessionStore::new(Duration::from_secs(10), 10));
        let _sweeper = store.spawn_sweeper();
        store.create(alice(), V, Instant::now()).expect("create");
        assert_eq!(store.len(), 1);
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_session_answers_only_to_its_own_key() {
        let store = SessionStore::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let id = store.create(alice(), V, now).expect("create");
        let mallory = KeyId::new("mallory");
        assert_eq!(
            store.touch(&id, &mallory, now),
            Err(RpcError::SessionNotFound)
        );
        assert_eq!(store.remove(&id, &mallory), Err(RpcError::SessionNotFound));
        assert_eq!(store.touch(&id, &alice(), now), Ok(V));
        assert_eq!(store.remove(&id, &alice()), Ok(()));
        assert_eq!(
            store.touch(&id, &alice(), now),
            Err(RpcError::SessionNotFound)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_refuses_new_sessions_but_reclaims_expired_ones() {
        let store = SessionStore::new(Duration::from_secs(30), 2);
        store.create(alice(), V, Instant::now()).expect("1");
        store.create(alice(), V, Instant::now()).expect("2");
        assert_eq!(
            store.create(alice(), V, Instant::now()),
            Err(RpcError::SessionLimit)
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(store.create(alice(), V, Instant::now()).is_ok());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn ids_are_unique_visible_ascii() {
        let store = SessionStore::new(Duration::from_secs(60), 100);
        let a = store.create(alice(), V, Instant::now()).expect("a");
        let b = store.create(alice(), V, Instant::now()).expect("b");
        assert_ne!(a, b);
        assert!(a.len() >= 43 && a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }
}
