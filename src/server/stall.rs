//! [`StallGuard`]: a connection's socket whose writes may not stall for ever. A client that
//! stops reading (a large response, a stream) holds no more than the socket's buffers: a write
//! that cannot progress for the request timeout fails, and hyper closes the connection.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

pin_project_lite::pin_project! {
    /// A connection's socket that fails a write which cannot progress for `limit` (the client
    /// stopped reading), so hyper closes the connection instead of waiting for ever.
    pub struct StallGuard<I> {
        #[pin]
        io: I,
        limit: Duration,
        // boxed (only once a write stalls) so the guard is `Unpin` like the socket
        stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<I> StallGuard<I> {
    pub fn new(io: I, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }
}

impl<I> StallGuard<I> {
    /// Turns a pending write into a time-out once it has been pending for `limit`.
    fn guard<T>(
        stalled: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
        limit: Duration,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                *stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match Some(timer.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncRead> AsyncRead for StallGuard<I> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<I: AsyncWrite> AsyncWrite for StallGuard<I> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write(cx, buf);
        Self::guard(this.stalled, *this.limit, cx, polled)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.project();
        let polled = this.io.poll_write_vectored(cx, bufs);
        Self::guard(this.stalled, *this.limit, cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_flush(cx);
        Self::guard(this.stalled, *this.limit, cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.project();
        let polled = this.io.poll_shutdown(cx);
        Self::guard(this.stalled, *this.limit, cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_limit() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let big = vec![b'x'; 4096];
        let err = guarded
            .write_all(&big)
            .await
            .expect_err("the client never reads");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // a client that reads keeps the writes flowing, however long the whole takes
        let (server, mut reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_secs(30));
        let slow_reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 4096 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                total += reader.read(&mut buf).await.expect("read");
            }
        });
        guarded
            .write_all(&big)
            .await
            .expect("progress resets the limit");
        slow_reader.await.expect("reader");
        let _ = client.read(&mut [0u8; 1]).await;
    }
}
