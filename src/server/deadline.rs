//! A request body that must have fully arrived by a deadline.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The body did not arrive before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Wraps a body: once the deadline has passed, a body still waiting for data
/// yields [`BodyTimedOut`] and sets `expired`. Data that has already arrived is
/// always delivered, however late the handler reads it.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl<B> DeadlineBody<B> {
    /// `inner` must be complete `timeout` from now.
    pub fn new(inner: B, timeout: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            expired,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(BodyTimedOut.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    /// One frame, then nothing ever again.
    struct Trickle(bool);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"a=1")))))
        }
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_at_the_deadline_and_says_so() {
        let expired = Arc::new(AtomicBool::new(false));
        let body = DeadlineBody::new(Trickle(false), Duration::from_millis(50), expired.clone());
        let result = to_bytes(axum::body::Body::new(body), 1024).await;
        assert!(result.is_err(), "the trickle was cut off");
        assert!(expired.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_complete_body_is_delivered_even_after_the_deadline() {
        let expired = Arc::new(AtomicBool::new(false));
        let body = DeadlineBody::new(
            axum::body::Body::from("a=1&b=2"),
            Duration::ZERO,
            expired.clone(),
        );
        let bytes = to_bytes(axum::body::Body::new(body), 1024)
            .await
            .expect("body");
        assert_eq!(&bytes[..], b"a=1&b=2");
        assert!(!expired.load(Ordering::Acquire));
    }
}
