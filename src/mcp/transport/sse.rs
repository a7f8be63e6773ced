//! The streams of `/mcp` (their events are written by [`super::reply`]): a request's response stream, the 2026-07-28 `subscriptions/listen`
//! stream, and the 2025-era standalone GET stream.
//!
//! A request's handler runs inline (see [`super::execute`]). The response is JSON when the
//! handler finishes without emitting anything; as soon as it emits (progress, a log message, a
//! server-to-client request) the handler moves into a task of its own and the response becomes
//! an SSE stream carrying those messages and then the result. The task is tied to the response: if the client goes away (the body is dropped) the task is
//! aborted, which is how 2026-07-28 cancellation by disconnect stops the work. A 2025-era
//! `notifications/cancelled` fires the request's cancellation token instead; the stream then
//! ends without a result.
//!
//! Long-lived streams send a `: keep-alive` comment every [`KEEP_ALIVE`] so proxies do not
//! time them out; every SSE response carries `X-Accel-Buffering: no`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::stream;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::mcp::events::Change;
use crate::mcp::session::SessionState;

use super::reply::{event, with_stream_headers};

/// The interval of keep-alive comments on an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A streaming SSE response from a channel of chunks, keeping `guard` alive as long as the
/// body is.
pub fn response<G: Send + 'static>(chunks: mpsc::Receiver<Bytes>, guard: G) -> Response {
    let body = stream::unfold((chunks, guard), |(mut rx, guard)| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), (rx, guard)))
    });
    with_stream_headers(Response::new(Body::from_stream(body)))
}

/// Aborts a task when dropped.
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a request task reports.
#[derive(Debug)]
pub enum Outcome {
    /// A message for the client before the result.
    Event(Value),
    /// The handler's answer.
    Done(Result<Value, RpcError>),
    /// The client cancelled the request: no answer is sent.
    Cancelled,
}

/// Runs `handler` in a task, forwarding what it emits on `events`; stops early if `cancel`
/// fires. The returned guard aborts the task when dropped. If the handler panics, the channel
/// closes without an [`Outcome::Done`]; the caller answers with a generic internal error.
pub fn spawn_request<F>(
    handler: F,
    mut events: mpsc::Receiver<Value>,
    cancel: Option<CancellationToken>,
) -> (mpsc::Receiver<Outcome>, AbortOnDrop)
where
    F: std::future::Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    let (out, outcomes) = mpsc::channel(crate::mcp::events::STREAM_BUFFER);
    let cancel = cancel.unwrap_or_default();
    let task = tokio::spawn(async move {
        let mut handler = std::pin::pin!(handler);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    let _ = out.send(Outcome::Cancelled).await;
                    return;
                }
                message = events.recv(), if open => match message {
                    Some(m) => {
                        if out.send(Outcome::Event(m)).await.is_err() {
                            return;
                        }
                    }
                    None => open = false,
                },
                result = &mut handler => {
                    while let Ok(m) = events.try_recv() {
                        if out.send(Outcome::Event(m)).await.is_err() {
                            return;
                        }
                    }
                    let _ = out.send(Outcome::Done(result)).await;
                    return;
                }
            }
        }
    });
    (outcomes, AbortOnDrop(task.abort_handle()))
}

/// Streams the rest of a request as SSE: `first` (already received), further events, then the
/// result (or the error) as the last message.
pub fn request_stream(
    first: Value,
    mut outcomes: mpsc::Receiver<Outcome>,
    guard: AbortOnDrop,
    finish: impl Fn(Result<Value, RpcError>) -> Value + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(crate::mcp::events::STREAM_BUFFER);
    let pump = tokio::spawn(async move {
        if tx.send(event(&first)).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(KEEP_ALIVE);
        ticker.tick().await;
        loop {
            let chunk = tokio::select! {
                outcome = outcomes.recv() => match outcome {
                    Some(Outcome::Event(m)) => event(&m),
                    Some(Outcome::Done(result)) => {
                        let _ = tx.send(event(&finish(result))).await;
                        return;
                    }
                    Some(Outcome::Cancelled) => return,
                    None => {
                        let _ = tx.send(event(&finish(Err(RpcError::Internal)))).await;
                        return;
                    }
                },
                _ = ticker.tick() => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    response(rx, (guard, AbortOnDrop(pump.abort_handle())))
}

/// Which changes a listener receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    /// Resource URIs whose updates are wanted (`None`: look them up in a session).
    pub uris: Option<Vec<String>>,
    /// The listener's binding and the ids of its tasks it asked about (2026-07-28 tasks).
    pub tasks: Option<(Arc<str>, Vec<String>)>,
}

impl Filter {
    fn wants(&self, change: &Change, session: Option<&SessionState>) -> bool {
        match change {
            Change::ToolsListChanged => self.tools,
            Change::PromptsListChanged => self.prompts,
            Change::ResourcesListChanged => self.resources,
            Change::ResourceUpdated(uri) => match (&self.uris, session) {
                (Some(uris), _) => uris.iter().any(|u| u == uri),
                (None, Some(s)) => s.is_subscribed(uri),
                (None, None) => false,
            },
            Change::Task(task) => self.tasks.as_ref().is_some_and(|(owner, ids)| {
                *owner == task.owner && ids.iter().any(|id| **id == *task.task_id)
            }),
        }
    }
}

/// A stream of changes: `opening` first, then every change `filter` wants, each turned into a
/// message by `wrap`, until the client goes away, or until either of `ends` fires (the stream's
/// own end: its session closed or a newer stream took over; and shutdown), when `closing` is
/// sent and the stream ends cleanly. The first of `ends` is fired when the stream stops.
#[allow(clippy::too_many_arguments)]
pub fn change_stream(
    opening: Vec<Bytes>,
    mut changes: broadcast::Receiver<Change>,
    filter: Filter,
    session: Option<Arc<SessionState>>,
    wrap: impl Fn(Value) -> Bytes + Send + 'static,
    ends: [CancellationToken; 2],
    closing: Vec<Bytes>,
) -> Response {
    struct OnClose<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for OnClose<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(crate::mcp::events::STREAM_BUFFER);
    let [end, stop] = ends;
    let closer = end.clone();
    let released = end.clone().drop_guard();
    let pump = tokio::spawn(async move {
        let _close = OnClose(Some(move || closer.cancel()));
        for chunk in opening {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        let mut ticker = tokio::time::interval(KEEP_ALIVE);
        ticker.tick().await;
        loop {
            let chunk = tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) if filter.wants(&c, session.as_deref()) => wrap(c.notification()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick() => Bytes::from_static(b": keep-alive\n\n"),
                () = tx.closed() => return,
                () = end.cancelled() => break,
                () = stop.cancelled() => break,
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        for chunk in closing {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    // `released`: the stream is over the moment its body is dropped, not when the aborted
    // pump next runs, so a client that reconnects at once finds the session's stream free.
    response(rx, (AbortOnDrop(pump.abort_handle()), released))
}
