//! Binding and serving: [`bind`] opens the configured address, [`run`] builds the state for a
//! configuration and serves, [`serve`] runs the connection loop until `shutdown` completes.
//!
//! The loop is hyper's HTTP/1 server driven by hand (rather than `axum::serve`) so that the
//! connection-level defences live here:
//! - at most `--max-connections` connections are open at once; one more is closed as soon as
//!   it is accepted (and logged as a security event), so a flood of idle sockets cannot
//!   exhaust file descriptors or memory;
//! - a client has `--header-timeout-secs` to send its request headers, on the first request
//!   and on every kept-alive one, or hyper closes the connection (slowloris); the body and the
//!   handler are bounded by the request timeout layer in [`crate::app::router`];
//! - on shutdown the listener closes, in-flight requests finish (up to [`DRAIN_TIMEOUT`]),
//!   idle kept-alive connections are closed.
//!
//! SIGHUP re-reads the keys file; a file that fails to load keeps the old keys and logs why.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::app::{self, AppState, Limits};
use crate::config::Config;
use crate::security::auth::KeyRing;

/// How long in-flight requests get to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the configured address.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    TcpListener::bind(config.bind).await
}

/// Serves `config` on `listener` until `shutdown` completes.
pub async fn run(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::from_config(config)?;
    if config.warn_plaintext {
        tracing::warn!(
            target: "security",
            bind = %config.bind,
            "serving plain HTTP on a non-loopback address: keys and data cross the network \
             unencrypted; put a TLS proxy in front (see SECURITY_CHECKLIST.md) or pass \
             --allow-plaintext to acknowledge"
        );
    }
    serve(listener, state, limits(config), shutdown).await
}

/// The HTTP limits of a configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_body: config.max_body,
        request_timeout: config.request_timeout,
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
    }
}

/// Serves `listener` with the full stack until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let background = [
        state.sessions.spawn_sweeper(),
        state.limiters.requests.spawn_sweeper(),
        state.limiters.auth_failures.spawn_sweeper(),
        spawn_key_reloader(state.keys.clone()),
    ];
    let app = app::router(state, limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tracing::info!(%addr, "listening on http://{addr}/mcp");

    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(target: "security", event = "connection_limit", client = %peer.ip(), "too many connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: requests still running after {DRAIN_TIMEOUT:?} were cut off");
    }
    for task in background {
        task.abort();
    }
    Ok(())
}

/// Re-reads the keys file on every SIGHUP.
fn spawn_key_reloader(keys: Arc<KeyRing>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match keys.reload() {
                Ok(n) => tracing::info!(keys = n, "keys reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "keys file not reloaded; the previous keys stay in force")
                }
            }
        }
    })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
