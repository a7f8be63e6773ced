//! Binding and serving: [`bind`] opens the configured address, [`run`] builds the state for a
//! configuration and serves, [`serve`] runs the connection loop until `shutdown` completes.
//!
//! The loop is hyper's HTTP/1 server driven by hand (rather than `axum::serve`) so that the
//! connection-level defences live here:
//! - at most `--max-connections` connections are open at once; one more is closed as soon as
//!   it is accepted (and logged as a security event), so a flood of idle sockets cannot
//!   exhaust file descriptors or memory;
//! - a client has `--header-timeout-secs` to finish the TLS handshake (with `--tls-cert`) and
//!   to send its request headers, on the first request and on every kept-alive one, or the
//!   connection is closed (slowloris); the body and the handler are bounded by the request
//!   timeout layer in [`crate::app::router`].
//!
//! Shutdown (SIGTERM or Ctrl-C): the listener closes; long-lived streams end cleanly (a
//! `subscriptions/listen` stream with its final result); requests in flight get
//! `--shutdown-timeout` to finish; then the audit log is flushed and `run` returns.
//!
//! SIGHUP re-reads the keys file and the TLS certificate; a file that fails to load keeps the
//! old one and logs why.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::app::{self, App, AppState, Limits};
use crate::config::Config;
use crate::observability::metrics::{ConnectionGuard, spawn_sampler};
use crate::security::auth::KeyRing;
use crate::tls::TlsState;

/// Opens the configured address.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    TcpListener::bind(config.bind).await
}

/// What `serve` may add to the plain loop.
#[derive(Default)]
pub struct Extras {
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<TlsState>>,
    /// Serve `/metrics` (without a key) on this listener too.
    pub metrics: Option<TcpListener>,
}

/// Serves `config` on `listener` until `shutdown` completes.
pub async fn run(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::from_config(config)?;
    run_with_state(config, listener, state, shutdown).await
}

/// Like [`run`], with a state built by the caller (an embedder's own tools).
pub async fn run_with_state(
    config: &Config,
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if config.warn_plaintext {
        tracing::warn!(
            target: "security",
            bind = %config.bind,
            "serving plain HTTP on a non-loopback address: keys and data cross the network \
             unencrypted; use --tls-cert/--tls-key or a TLS proxy (see SECURITY_CHECKLIST.md), \
             or pass --allow-plaintext to acknowledge"
        );
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(Arc::new(TlsState::load(cert, key).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        })?)),
        None => None,
    };
    let metrics = match config.metrics_bind {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    serve_with(
        listener,
        state,
        limits(config),
        Extras { tls, metrics },
        shutdown,
    )
    .await
}

/// The HTTP limits of a configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_body: config.max_body,
        request_timeout: config.request_timeout,
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
        shutdown_timeout: config.shutdown_timeout,
    }
}

/// Serves `listener` with the full stack until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, limits, Extras::default(), shutdown).await
}

/// [`serve`], with TLS and a metrics listener.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    extras: Extras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let audit_writer = state.observability.audit.spawn_writer();
    let gauges = state.clone();
    let mut background = vec![
        state.sessions.spawn_sweeper(),
        state.limiters.requests.spawn_sweeper(),
        state.limiters.auth_failures.spawn_sweeper(),
        spawn_reloader(state.keys.clone(), extras.tls.clone()),
        spawn_sampler(state.observability.metrics.clone(), move || {
            (
                gauges.sessions.len(),
                gauges.limiters.requests.tracked(),
                gauges.observability.audit.dropped(),
            )
        }),
    ];
    if let Some(metrics) = extras.metrics {
        let metrics_addr = metrics.local_addr()?;
        tracing::info!(%metrics_addr, "metrics on http://{metrics_addr}/metrics");
        let app = app::metrics_router(state.clone());
        let stop = state.shutdown.clone();
        background.push(tokio::spawn(async move {
            let _ = axum::serve(metrics, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }));
    }
    let scheme = if extras.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let stop = state.shutdown.clone();
    let audit = state.observability.audit.clone();
    let metrics = state.observability.metrics.clone();
    let app = app::router(state, limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tracing::info!(%addr, "listening on {scheme}://{addr}/mcp");

    let mut shutdown = std::pin::pin!(shutdown);
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
            metrics.security_event("connection_limit");
            tracing::warn!(target: "security", event = "connection_limit", client = %peer.ip(), "too many connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let watcher = graceful.watcher();
        let tls = extras.tls.clone();
        let open = ConnectionGuard::new(&metrics.connections_open);
        tokio::spawn(async move {
            let _held = (permit, open);
            match tls {
                None => serve_connection(stream, peer, app, limits, watcher).await,
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, tls.acceptor().accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, peer, app, limits, watcher).await;
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; letting requests in flight finish");
    stop.cancel();
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.shutdown_timeout, "shutdown: requests still running were cut off");
    }
    for task in background {
        task.abort();
    }
    audit.close();
    if let Some(writer) = audit_writer {
        let _ = writer.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn serve_connection<I>(
    io: I,
    peer: std::net::SocketAddr,
    app: App,
    limits: Limits,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let _ = watcher
        .watch(builder.serve_connection(TokioIo::new(io), service))
        .await;
}

/// Re-reads the keys file and the TLS certificate on every SIGHUP.
fn spawn_reloader(keys: Arc<KeyRing>, tls: Option<Arc<TlsState>>) -> tokio::task::JoinHandle<()> {
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
}
