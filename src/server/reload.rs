//! SIGHUP: re-reads the keys file (failing closed; see [`crate::security::auth`]), ends the
//! sessions of keys that are gone, reopens the audit file (logrotate renames, then signals) and
//! re-reads the TLS certificate (keeping the old one if the new one fails to load).

use std::sync::Arc;

use crate::mcp::events::Change;
use crate::state::AppState;
use crate::tls::TlsState;

/// Re-reads the keys file and the TLS certificate on every SIGHUP.
pub fn spawn_reloader(state: AppState, tls: Option<Arc<TlsState>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match state.keys.reload() {
                Ok(n) => tracing::info!(keys = n, "keys reloaded"),
                Err(e) => {
                    state
                        .observability
                        .security_event("keys_reload_failed", None);
                    tracing::error!(
                        error = %e,
                        keys = state.keys.len(),
                        "keys file not loaded: every key of the file is refused until it loads \
                         (command-line and environment keys still work)"
                    );
                }
            }
            // The policy is read after the keys: it may name only keys in force.
            if state.policies.is_configured() {
                let keys = state.keys.clone();
                let reloaded = state.policies.reload(|id| keys.knows(id));
                // What a key may see may have changed either way: listeners fetch the list again.
                state.server.changes().announce(Change::ToolsListChanged);
                match reloaded {
                    Ok(()) => tracing::info!("policy reloaded"),
                    Err(e) => {
                        state
                            .observability
                            .security_event("policy_reload_failed", None);
                        tracing::error!(
                            error = %e,
                            "policy not taken whole: the keys it names wrongly are denied \
                             everything until it loads"
                        );
                    }
                }
            }
            // The sessions of revoked keys end now, not at their idle timeout.
            state.sessions.sweep(tokio::time::Instant::now());
            // logrotate renames the file, then signals: write on to a new one.
            state.observability.audit.reopen();
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in force")
                    }
                }
            }
        }
    })
}
