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
//! - Each key may hold at most `--max-sessions-per-key` live sessions; one more `initialize` is
//!   refused with 429 (a JSON-RPC error), so one key cannot take the global cap from the others.
//! - A session keeps only what the server uses of what the client declared: the names of the
//!   known client capabilities ([`KNOWN_CAPABILITIES`]), never the object as sent, and nothing
//!   of `clientInfo`. An idle session therefore costs a fixed, small amount of memory whatever
//!   the `initialize` request carried (measured in SECURITY_IMPLEMENTATION.md).
//! - A session has a closing token, a child of its key's revocation token: it fires when the
//!   session is deleted, expires or is swept, and when its key is revoked, and ends the
//!   session's GET stream.
//! - Time comes from `tokio::time`, so expiry is tested with a paused clock.
//! - A session carries the per-client state of the 2025 era ([`SessionState`]): the log level,
//!   resource subscriptions, the client's capabilities, requests in flight (for
//!   `notifications/cancelled`), server-to-client requests awaiting an answer (at most
//!   [`MAX_PENDING`]), and the GET stream's recent events for `Last-Event-ID` resumption
//!   (at most [`EVENT_LOG`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::keys;
use crate::mcp::events::LogLevel;
use crate::mcp::jsonrpc::RequestId;
use crate::mcp::version::ProtocolVersion;
use crate::security::auth::Authenticated;
use crate::security::principal::Principal;

/// Server-to-client requests one session may have outstanding.
pub const MAX_PENDING: usize = 16;
/// GET-stream events kept for resumption.
pub const EVENT_LOG: usize = 100;
/// The client capabilities the server acts on; a session keeps only these names.
pub const KNOWN_CAPABILITIES: [&str; 3] = ["sampling", "elicitation", "roots"];

/// The client capabilities a session keeps: the known names the client declared, each with an
/// empty object, whatever the client sent inside or beside them.
pub fn known_capabilities(declared: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut kept = Map::new();
    if let Some(declared) = declared {
        for name in KNOWN_CAPABILITIES {
            if declared.get(name).is_some_and(Value::is_object) {
                kept.insert(name.to_owned(), Value::Object(Map::new()));
            }
        }
    }
    kept
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single insert or remove: a panic cannot leave them
    // half-done, so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client's answer to a server-to-client request: its `result`, or its `error`.
pub type ClientAnswer = Result<Value, Value>;

/// The per-client state of one 2025-era session.
#[derive(Debug, Default)]
pub struct SessionState {
    pub client_capabilities: Map<String, Value>,
    log_level: Mutex<Option<LogLevel>>,
    subscriptions: Mutex<HashSet<String>>,
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    pending: Mutex<HashMap<String, oneshot::Sender<ClientAnswer>>>,
    next_request: AtomicU64,
    get_stream: Mutex<Option<CancellationToken>>,
    next_event: AtomicU64,
    events: Mutex<VecDeque<(u64, Value)>>,
    closed: CancellationToken,
    /// Its record is in the fleet's Redis (see [`crate::fleet::sessions`]).
    pub recorded: std::sync::atomic::AtomicBool,
}

impl SessionState {
    pub fn new(client_capabilities: Map<String, Value>) -> Self {
        Self {
            client_capabilities,
            ..Self::default()
        }
    }

    /// Fires when the session ends (deleted, expired, its key revoked).
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    pub fn log_level(&self) -> Option<LogLevel> {
        *lock(&self.log_level)
    }

    pub fn set_log_level(&self, level: LogLevel) {
        *lock(&self.log_level) = Some(level);
    }

    pub fn subscribe(&self, uri: &str) {
        lock(&self.subscriptions).insert(uri.to_owned());
    }

    pub fn unsubscribe(&self, uri: &str) {
        lock(&self.subscriptions).remove(uri);
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    /// Registers a request in flight; the token fires on `notifications/cancelled`.
    pub fn start(&self, id: &RequestId) -> CancellationToken {
        let token = CancellationToken::new();
        lock(&self.in_flight).insert(id.clone(), token.clone());
        token
    }

    pub fn finish(&self, id: &RequestId) {
        lock(&self.in_flight).remove(id);
    }

    /// Cancels a request in flight; unknown or finished ids are ignored.
    pub fn cancel(&self, id: &RequestId) {
        if let Some(token) = lock(&self.in_flight).remove(id) {
            token.cancel();
        }
    }

    /// Reserves an id for a server-to-client request and the channel its answer arrives on.
    pub fn expect_answer(&self) -> Option<(String, oneshot::Receiver<ClientAnswer>)> {
        let mut pending = lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            return None;
        }
        let id = format!("s-{}", self.next_request.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        pending.insert(id.clone(), tx);
        Some((id, rx))
    }

    /// Forgets a server-to-client request (answered, timed out or abandoned).
    pub fn forget(&self, id: &str) {
        lock(&self.pending).remove(id);
    }

    /// Routes a client's answer; false if no request with that id is waiting.
    pub fn answer(&self, id: &RequestId, answer: ClientAnswer) -> bool {
        let RequestId::String(id) = id else {
            return false;
        };
        match lock(&self.pending).remove(id) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Claims the session's one GET stream. A resuming client (`takeover`) replaces a stream
    /// still open (its connection may not have been noticed as gone yet); otherwise a second
    /// stream is refused (`None`). The token ends the stream when it is replaced or the
    /// session ends.
    pub fn open_get_stream(&self, takeover: bool) -> Option<CancellationToken> {
        let mut current = lock(&self.get_stream);
        if let Some(old) = current.as_ref().filter(|t| !t.is_cancelled()) {
            if !takeover {
                return None;
            }
            old.cancel();
        }
        let token = self.closed.child_token();
        *current = Some(token.clone());
        Some(token)
    }

    /// Records a GET-stream event; returns its id.
    pub fn record_event(&self, message: Value) -> u64 {
        let id = self.next_event.fetch_add(1, Ordering::Relaxed) + 1;
        let mut events = lock(&self.events);
        if events.len() == EVENT_LOG {
            events.pop_front();
        }
        events.push_back((id, message));
        id
    }

    /// The recorded GET-stream events after `last`.
    pub fn events_after(&self, last: u64) -> Vec<(u64, Value)> {
        lock(&self.events)
            .iter()
            .filter(|(id, _)| *id > last)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    version: ProtocolVersion,
    last_seen: Instant,
    state: Arc<SessionState>,
}

/// The sessions, and how many each key holds.
#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<String, Session>,
    per_key: HashMap<Principal, usize>,
}

impl Table {
    fn insert(&mut self, id: String, session: Session) {
        *self.per_key.entry(session.principal.clone()).or_default() += 1;
        self.sessions.insert(id, session);
    }

    /// Removes a session and fires its closing token.
    fn remove(&mut self, id: &str) {
        if let Some(session) = self.sessions.remove(id) {
            self.forget(&session);
        }
    }

    fn forget(&mut self, session: &Session) {
        session.state.closed.cancel();
        if let Some(n) = self.per_key.get_mut(&session.principal) {
            *n -= 1;
            if *n == 0 {
                self.per_key.remove(&session.principal);
            }
        }
    }

    /// Drops the sessions idle for `idle` or longer, or whose key was revoked.
    fn sweep(&mut self, now: Instant, idle: Duration) -> usize {
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                now.saturating_duration_since(s.last_seen) >= idle || s.state.closed.is_cancelled()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        gone.len()
    }
}

/// The live sessions.
#[derive(Debug)]
pub struct SessionStore {
    table: Mutex<Table>,
    idle_timeout: Duration,
    max_sessions: usize,
    max_per_key: usize,
}

impl SessionStore {
    pub fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self::with_quota(idle_timeout, max_sessions, usize::MAX)
    }

    /// A store that also lets one key hold at most `max_per_key` sessions.
    pub fn with_quota(idle_timeout: Duration, max_sessions: usize, max_per_key: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            idle_timeout,
            max_sessions,
            max_per_key,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Mints a session for `principal` at the negotiated `version`.
    pub fn create(
        &self,
        principal: impl Into<Principal>,
        version: ProtocolVersion,
        now: Instant,
    ) -> Result<String, RpcError> {
        self.create_for(&Authenticated::new(principal), version, Map::new(), now)
    }

    /// Mints a session for an authenticated key, remembering the known capabilities the client
    /// declared (see [`known_capabilities`]). The session ends when the key is revoked.
    pub fn create_for(
        &self,
        auth: &Authenticated,
        version: ProtocolVersion,
        client_capabilities: Map<String, Value>,
        now: Instant,
    ) -> Result<String, RpcError> {
        let id = keys::random_token(32).map_err(|_| RpcError::Internal)?;
        self.insert(id.clone(), auth, version, client_capabilities, now)?;
        Ok(id)
    }

    /// Takes in a session another instance of the fleet minted (its record says `auth` owns
    /// it), under the same caps as a new one; returns it as [`Self::open`] does.
    pub fn adopt(
        &self,
        id: &str,
        auth: &Authenticated,
        version: ProtocolVersion,
        client_capabilities: Map<String, Value>,
        now: Instant,
    ) -> Result<(ProtocolVersion, Arc<SessionState>), RpcError> {
        if let Ok(held) = self.open(id, &auth.principal, now) {
            return Ok(held);
        }
        self.insert(id.to_owned(), auth, version, client_capabilities, now)?;
        self.open(id, &auth.principal, now)
    }

    /// Drops a session ended elsewhere (its closing token fires), whoever holds it.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn insert(
        &self,
        id: String,
        auth: &Authenticated,
        version: ProtocolVersion,
        client_capabilities: Map<String, Value>,
        now: Instant,
    ) -> Result<(), RpcError> {
        let mut table = self.lock();
        // The key's own cap (a policy's `max_sessions`) replaces the server-wide one.
        let cap = auth.rules.max_sessions.unwrap_or(self.max_per_key);
        let over_quota = |t: &Table| t.per_key.get(&auth.principal).copied().unwrap_or(0) >= cap;
        if table.sessions.len() >= self.max_sessions || over_quota(&table) {
            table.sweep(now, self.idle_timeout);
            if over_quota(&table) {
                return Err(RpcError::SessionQuota);
            }
            if table.sessions.len() >= self.max_sessions {
                return Err(RpcError::SessionLimit);
            }
        }
        let state = SessionState {
            client_capabilities,
            closed: auth.grant.revoked().child_token(),
            ..SessionState::default()
        };
        table.insert(
            id,
            Session {
                principal: auth.principal.clone(),
                version,
                last_seen: now,
                state: Arc::new(state),
            },
        );
        Ok(())
    }

    /// Looks a session up for `principal` and marks it used; returns its negotiated version.
    pub fn touch(
        &self,
        id: &str,
        principal: &Principal,
        now: Instant,
    ) -> Result<ProtocolVersion, RpcError> {
        self.open(id, principal, now).map(|(v, _)| v)
    }

    /// Like [`Self::touch`], and also returns the session's state.
    pub fn open(
        &self,
        id: &str,
        principal: &Principal,
        now: Instant,
    ) -> Result<(ProtocolVersion, Arc<SessionState>), RpcError> {
        let mut table = self.lock();
        let session = table
            .sessions
            .get_mut(id)
            .ok_or(RpcError::SessionNotFound)?;
        if session.principal != *principal {
            return Err(RpcError::SessionNotFound);
        }
        if now.saturating_duration_since(session.last_seen) >= self.idle_timeout
            || session.state.closed.is_cancelled()
        {
            table.remove(id);
            return Err(RpcError::SessionNotFound);
        }
        session.last_seen = now;
        Ok((session.version, session.state.clone()))
    }

    /// Ends a session (HTTP DELETE); only its own key may end it.
    pub fn remove(&self, id: &str, principal: &Principal) -> Result<(), RpcError> {
        let mut table = self.lock();
        match table.sessions.get(id) {
            Some(s) if s.principal == *principal => {
                table.remove(id);
                Ok(())
            }
            _ => Err(RpcError::SessionNotFound),
        }
    }

    /// Drops every expired session and every session of a revoked key (firing their closing
    /// tokens); returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        self.lock().sweep(now, self.idle_timeout)
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The sessions `principal` holds.
    pub fn held_by(&self, principal: &Principal) -> usize {
        self.lock().per_key.get(principal).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps expired sessions in the background, at a tenth of the idle timeout (at least
    /// every second).
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let period = (self.idle_timeout / 10).max(Duration::from_secs(1));
        crate::upkeep::every(self, period, |store| {
            store.sweep(Instant::now());
        })
    }
}

#[cfg(test)]
mod tests;
