//! A request deadline that costs nothing for requests answered at once.
//!
//! `tower_http::timeout` arms a timer for every request. Most requests here (an
//! introspection served from the cache, a metadata document) are answered on their first
//! poll, with the body already read; a timer for each of them is measurable at tens of
//! thousands of requests per second. [`DeadlineLayer`] polls the request once and arms the
//! timer only if it is not done then (waiting for its body, the store, a blocking task):
//! exactly the requests a deadline is for. A request still running when the deadline
//! passes is answered `408 Request Timeout` and dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse as _, Response};
use tower::{Layer, Service};

/// Adds a [`Deadline`] to a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    /// Requests must be answered within `limit` of their first wait.
    pub(crate) fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// See the [module documentation](self).
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(req),
            sleep: None,
            limit: self.limit,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Deadline`]d request.
    pub(crate) struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
        limit: Duration,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt as _;

    fn service(
        wait: Option<Duration>,
    ) -> impl Service<Request<()>, Response = Response, Error = Infallible, Future: Send> + Clone
    {
        tower::service_fn(move |_req: Request<()>| async move {
            if let Some(d) = wait {
                tokio::time::sleep(d).await;
            }
            Ok::<_, Infallible>(StatusCode::OK.into_response())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn answers_in_time_pass_and_late_ones_are_408() {
        let layer = DeadlineLayer::new(Duration::from_secs(5));
        // Answered on the first poll: no timer at all.
        let r = layer.layer(service(None)).oneshot(Request::new(())).await;
        assert_eq!(r.unwrap().status(), StatusCode::OK);
        // Waits, but within the deadline.
        let r = layer
            .layer(service(Some(Duration::from_secs(4))))
            .oneshot(Request::new(()))
            .await;
        assert_eq!(r.unwrap().status(), StatusCode::OK);
        // Waits too long.
        let r = layer
            .layer(service(Some(Duration::from_secs(6))))
            .oneshot(Request::new(()))
            .await;
        assert_eq!(r.unwrap().status(), StatusCode::REQUEST_TIMEOUT);
    }
}
