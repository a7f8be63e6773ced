//! [`SharedSessions`]: the record of each 2025-era session in Redis, so that any instance of a
//! fleet honours a session another minted, and a DELETE on one ends it on all.
//!
//! A record is `smcp:session:<digest of the id>` → `<digest of the owner's binding>
//! <protocol version> <client capability names>`, with Redis's expiry set to the idle timeout
//! and renewed by each request. An instance that meets a session id it does not hold asks
//! Redis, and takes the session in (its own copy of the per-connection state: log level,
//! subscriptions, requests in flight) if the caller is the owner. Every request on a session
//! checks the record (one round trip, in a script that also renews it), so a session ended
//! anywhere is 404 everywhere from the next request; the session's GET stream, and the
//! server-to-client requests on it, stay with the instance that holds the connection (the
//! balancer keeps a session on one instance: README "Running a fleet").
//!
//! While Redis does not answer, an instance honours the sessions it holds and no other;
//! sessions minted then are its own until Redis answers again.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Fleet;
use super::script::{CONFIRM_SCRIPT, END_SCRIPT};
use crate::mcp::session::KNOWN_CAPABILITIES;
use crate::mcp::version::ProtocolVersion;
use crate::security::principal::Principal;

/// What Redis says of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The caller's session: its version and the client capabilities it declared.
    Live {
        version: ProtocolVersion,
        capabilities: Map<String, Value>,
    },
    /// No such session (never minted, expired or ended).
    Gone,
    /// Another caller's session: the same answer as `Gone` to the caller, but not ended here.
    NotYours,
    /// Redis did not answer.
    Unknown,
}

/// What ending a session did in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The record is gone: no instance honours the session from its next request.
    Everywhere,
    /// There was no record.
    NoRecord,
    /// Another caller's session: left as it is.
    NotYours,
    /// Redis did not answer.
    Unknown,
}

/// The fleet's session records.
#[derive(Debug, Clone)]
pub struct SharedSessions {
    fleet: Fleet,
    idle: Duration,
}

impl SharedSessions {
    pub fn new(fleet: Fleet, idle: Duration) -> Self {
        Self { fleet, idle }
    }

    fn key(&self, id: &str) -> String {
        format!(
            "smcp:session:{}",
            hex::encode(self.fleet.digest("session", 2, id.as_bytes()))
        )
    }

    fn owner(&self, principal: &Principal) -> String {
        hex::encode(
            self.fleet
                .digest("owner", 3, principal.binding().as_bytes()),
        )
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.idle.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Records a new session; false if Redis did not answer (the session stays this
    /// instance's own).
    pub async fn publish(
        &self,
        id: &str,
        owner: &Principal,
        version: ProtocolVersion,
        capabilities: &Map<String, Value>,
    ) -> bool {
        if !self.fleet.link.is_up() {
            return false;
        }
        let names: Vec<&str> = capabilities.keys().map(String::as_str).collect();
        let record = format!(
            "{} {} {}",
            self.owner(owner),
            version.as_str(),
            names.join(",")
        );
        let (key, ms) = (self.key(id), self.idle_ms());
        self.fleet.link.set_expiring(key, record, ms).await
    }

    /// Whether `id` is `caller`'s session, renewing it if so.
    pub async fn confirm(&self, id: &str, caller: &Principal) -> Remote {
        if !self.fleet.link.is_up() {
            return Remote::Unknown;
        }
        let (key, owner, ms) = (self.key(id), self.owner(caller), self.idle_ms());
        let answer = self
            .fleet
            .link
            .run(|mut c| async move {
                CONFIRM_SCRIPT
                    .key(key)
                    .arg(owner)
                    .arg(ms)
                    .invoke_async::<redis::Value>(&mut c)
                    .await
            })
            .await;
        match answer {
            None => Remote::Unknown,
            Some(redis::Value::Int(1)) => Remote::NotYours,
            Some(redis::Value::BulkString(bytes)) => parse_record(&bytes),
            Some(_) => Remote::Gone,
        }
    }

    /// Ends `caller`'s session `id` everywhere; what Redis held.
    pub async fn end(&self, id: &str, caller: &Principal) -> Ended {
        if !self.fleet.link.is_up() {
            return Ended::Unknown;
        }
        let (key, owner) = (self.key(id), self.owner(caller));
        let answer = self
            .fleet
            .link
            .run(|mut c| async move {
                END_SCRIPT
                    .key(key)
                    .arg(owner)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match answer {
            None => Ended::Unknown,
            Some(1) => Ended::NotYours,
            Some(2) => Ended::Everywhere,
            Some(_) => Ended::NoRecord,
        }
    }
}

/// A record's version and capabilities (a record this server did not write is `Gone`).
fn parse_record(bytes: &[u8]) -> Remote {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.splitn(3, ' ');
    let (_owner, Some(version), names) = (parts.next(), parts.next(), parts.next()) else {
        return Remote::Gone;
    };
    let Some(version) = ProtocolVersion::parse(version) else {
        return Remote::Gone;
    };
    let mut capabilities = Map::new();
    for name in names.unwrap_or_default().split(',') {
        // Only the names a session may keep, as at `initialize`.
        if let Some(known) = KNOWN_CAPABILITIES.iter().find(|k| **k == name) {
            capabilities.insert((*known).to_owned(), Value::Object(Map::new()));
        }
    }
    Remote::Live {
        version,
        capabilities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_back_its_version_and_only_known_capabilities() {
        let remote = parse_record(b"abcd 2025-06-18 sampling,roots,made-up");
        let Remote::Live {
            version,
            capabilities,
        } = remote
        else {
            panic!("{remote:?}");
        };
        assert_eq!(
            version,
            ProtocolVersion::parse("2025-06-18").expect("known")
        );
        assert_eq!(
            capabilities.keys().collect::<Vec<_>>(),
            vec!["roots", "sampling"]
        );
    }

    #[test]
    fn a_record_this_server_did_not_write_is_no_session() {
        assert_eq!(parse_record(b"abcd 1999-01-01 "), Remote::Gone);
        assert_eq!(parse_record(b"garbage"), Remote::Gone);
    }
}
