//! Binding and serving: [`bind`] opens the configured address, [`run`] builds the state for a
//! configuration and serves, [`serve`] runs the connection loop until `shutdown` completes.
//!
//! The loop is hyper's HTTP/1 server driven by hand (rather than `axum::serve`) so that the
//! connection-level defences live here, for the main listener and the metrics listener alike:
//! - at most `--max-connections` connections are open at once, and at most
//!   `--max-connections-per-ip` from one client address (see
//!   [`crate::security::connections`]); one more is closed as soon as it is accepted, before a
//!   byte is read (counted, and logged throttled, as a `connection_limit` security event), so a
//!   flood of idle sockets from one address cannot exhaust descriptors or starve the others;
//! - a client has `--header-timeout-secs` to finish the TLS handshake (with `--tls-cert`) and
//!   to send its request headers, on the first request and on every kept-alive one, or the
//!   connection is closed (slowloris); the body and the handler are bounded by the request
//!   timeout layer in [`crate::app::router`];
//! - a client that stops reading (a large response, a stream) holds no more than the socket's
//!   buffers: a write that cannot progress for the request timeout fails ([`StallGuard`]) and
//!   the connection is closed, so neither memory nor the connection slot is held without bound.
//! - a failing `accept` (out of descriptors) backs off and is logged at most a few times a
//!   second; the connections already open keep being served.
//!
//! Shutdown (SIGTERM or Ctrl-C): the listener closes; long-lived streams end cleanly (a
//! `subscriptions/listen` stream with its final result); requests in flight get
//! `--shutdown-timeout` to finish; then the audit log is flushed and `run` returns.
//!
//! The metrics listener (`--metrics-bind`) has its own, smaller connection budget
//! ([`METRICS_CONNECTIONS`]), so scrapers and the main listener cannot starve each other.
//!
//! SIGHUP re-reads the keys file, the policy file and the TLS certificate, and reopens the
//! audit file. A keys file that fails to load leaves
//! no file key in force (fail closed; see [`crate::security::auth`]), logs why and counts a
//! `keys_reload_failed` event; the sessions of keys that are gone end. A certificate that fails
//! to load keeps the old one.

mod reload;
mod stall;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::app::{self, HttpService};
use crate::config::Config;
use crate::config::startup::Opened;
use crate::observability::Observability;
use crate::observability::metrics::{ConnectionGuard, spawn_sampler};
use crate::observability::security::LogThrottle;
use crate::security::connections::{ConnectionLimiter, Refused};
use crate::state::{AppState, Limits};
use crate::tls::TlsState;
use reload::spawn_reloader;
pub use stall::StallGuard;

/// Open connections the metrics listener allows (per address: the main listener's share).
pub const METRICS_CONNECTIONS: usize = 16;

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

/// Serves `config` on `listener` until `shutdown` completes, with what start-up opened for it
/// ([`crate::config::startup::open`]).
pub async fn run(
    config: &Config,
    opened: Opened,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_serving(config, opened, listener, shutdown, |state| state).await
}

/// [`run`], with the state changed by `customize` first (a gateway's server, an embedder's).
pub async fn run_serving(
    config: &Config,
    opened: Opened,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    customize: impl FnOnce(AppState) -> AppState,
) -> std::io::Result<()> {
    if !config.bind.ip().is_loopback() && config.tls.is_none() {
        tracing::warn!(
            target: "security",
            bind = %config.bind,
            "serving plain HTTP on a non-loopback address (--allow-plaintext): keys and data \
             cross the network unencrypted"
        );
    }
    let tls = opened.tls.clone();
    let state = customize(AppState::new(config, opened));
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
        max_body: config.bounds.max_body,
        request_timeout: config.bounds.request_timeout,
        header_timeout: config.bounds.header_timeout,
        max_connections: config.bounds.max_connections,
        max_connections_per_ip: config.bounds.max_connections_per_ip,
        ipv6_prefix: config.bounds.rate.ipv6_prefix,
        max_streams_per_key: config.bounds.max_streams_per_key,
        shutdown_timeout: config.bounds.shutdown_timeout,
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
        state.tasks.spawn_sweeper(),
        spawn_reloader(state.clone(), extras.tls.clone()),
        state.observability.spawn_summary_flusher(),
        spawn_sampler(state.observability.metrics.clone(), move || gauges.gauges()),
    ];
    background.extend(state.limiters.spawn_maintenance());
    if let Some(fleet) = state.fleet.clone() {
        // Whether Redis answers is known (and logged) from the start, not at the first request.
        background.push(tokio::spawn(async move {
            tracing::info!(
                instances = fleet.size,
                fallback = ?fleet.fallback,
                "one of a fleet: budgets and sessions shared through Redis"
            );
            if fleet.link.ping().await {
                tracing::info!("Redis answers");
            }
        }));
    }
    let stop = state.shutdown.clone();
    if let Some(metrics) = extras.metrics {
        let metrics_addr = metrics.local_addr()?;
        tracing::info!(%metrics_addr, "metrics on http://{metrics_addr}/metrics");
        let service = app::metrics_router(state.clone());
        let slots = Arc::new(ConnectionLimiter::new(
            METRICS_CONNECTIONS.min(limits.max_connections),
            limits.max_connections_per_ip,
            limits.ipv6_prefix,
        ));
        let listening = Listening {
            state: state.clone(),
            slots,
            limits,
            tls: None,
            graceful: GracefulShutdown::new(),
            accept_log: LogThrottle::default(),
        };
        let stop = stop.clone();
        background.push(tokio::spawn(async move {
            listening
                .accept_until(metrics, service, async move { stop.cancelled().await })
                .await;
            listening.drain().await;
        }));
    }
    let scheme = if extras.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let audit = state.observability.audit.clone();
    let state_at_exit = state.clone();
    let listening = Listening {
        state: state.clone(),
        slots: Arc::new(ConnectionLimiter::new(
            limits.max_connections,
            limits.max_connections_per_ip,
            limits.ipv6_prefix,
        )),
        limits,
        tls: extras.tls.clone(),
        graceful: GracefulShutdown::new(),
        accept_log: LogThrottle::default(),
    };
    let app = app::router(state, limits);
    tracing::info!(%addr, "listening on {scheme}://{addr}/mcp");
    listening.accept_until(listener, app, shutdown).await;
    tracing::info!("shutting down: no new connections; letting requests in flight finish");
    stop.cancel();
    listening.drain().await;
    for task in background {
        task.abort();
    }
    state_at_exit.observability.flush_summaries(true);
    audit.close();
    if let Some(writer) = audit_writer {
        let _ = writer.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What an accept loop needs besides its listener and service.
struct Listening {
    state: AppState,
    slots: Arc<ConnectionLimiter>,
    limits: Limits,
    tls: Option<Arc<TlsState>>,
    graceful: GracefulShutdown,
    accept_log: LogThrottle,
}

impl Listening {
    /// Lets the connections in flight finish, for at most the shutdown timeout.
    async fn drain(self) {
        let timeout = self.limits.shutdown_timeout;
        if tokio::time::timeout(timeout, self.graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(?timeout, "shutdown: requests still running were cut off");
        }
    }

    /// Accepts connections on `listener` and serves each with `service` until `until`
    /// completes. A connection over a cap is closed before any byte is read.
    async fn accept_until<S>(
        &self,
        listener: TcpListener,
        service: S,
        until: impl Future<Output = ()>,
    ) where
        S: HttpService,
    {
        let obs: &Observability = &self.state.observability;
        let mut until = std::pin::pin!(until);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors or similar: back off instead of spinning, and say
                        // so without flooding the log.
                        obs.metrics.security_event("accept_failed");
                        if self.accept_log.admit("accept_failed", tokio::time::Instant::now()).is_some() {
                            tracing::warn!(error = %e, "accept failed; open connections are still served");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut until => break,
            };
            let exempt = self.state.client_ip.trusts(peer.ip());
            let slot = match self.slots.admit(peer.ip(), exempt) {
                Ok(slot) => slot,
                Err(refused) => {
                    let kind = match refused {
                        Refused::Total => "connection_limit",
                        Refused::PerAddress => "connection_limit_per_ip",
                    };
                    obs.security_event(kind, Some(peer.ip()));
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let stream = StallGuard::new(stream, self.limits.request_timeout);
            let service = service.clone();
            let watcher = self.graceful.watcher();
            let tls = self.tls.clone();
            let limits = self.limits;
            let open = ConnectionGuard::new(&obs.metrics.connections_open);
            tokio::spawn(async move {
                let _held = (slot, open);
                match tls {
                    None => serve_connection(stream, peer, service, limits, watcher).await,
                    Some(tls) => {
                        let handshake = tokio::time::timeout(
                            limits.header_timeout,
                            tls.acceptor().accept(stream),
                        );
                        if let Ok(Ok(stream)) = handshake.await {
                            serve_connection(stream, peer, service, limits, watcher).await;
                        }
                    }
                }
            });
        }
    }
}

async fn serve_connection<I, S>(
    io: I,
    peer: std::net::SocketAddr,
    app: S,
    limits: Limits,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    // The connection's own copy of the stack, called in place: every layer is ready at once
    // (none sheds load through readiness) and every future it returns owns what it needs, so
    // a request need not clone the whole stack (some twenty `Arc`s, cloned and dropped) as
    // `oneshot` does. Should a layer ever not be ready, the request takes a clone that waits.
    let app = std::sync::Mutex::new(app);
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(axum::body::Body::new);
            let mut app = app.lock().unwrap_or_else(|e| e.into_inner());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match tower::Service::poll_ready(&mut *app, &mut cx) {
                std::task::Poll::Ready(Ok(())) => {
                    futures_util::future::Either::Left(tower::Service::call(&mut *app, request))
                }
                _ => futures_util::future::Either::Right(app.clone().oneshot(request)),
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let _ = watcher
        .watch(builder.serve_connection(TokioIo::new(io), service))
        .await;
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
