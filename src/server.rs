//! Binding and serving: [`bind`] opens the configured address, [`run`] builds the state for a
//! configuration and serves, [`serve`] serves a listener until `shutdown` completes, then lets
//! in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::app::{self, AppState, Limits};
use crate::config::Config;

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
    serve(listener, state, limits(config), shutdown).await
}

/// The HTTP limits of a configuration.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_body: config.max_body,
        request_timeout: config.request_timeout,
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
    let _sweeper = state.sessions.spawn_sweeper();
    let app = app::router(state, limits);
    tracing::info!(%addr, "listening on http://{addr}/mcp");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
