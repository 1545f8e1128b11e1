//! Running a core future for a caller: cancellation by the caller's signal, and panics
//! turned into errors instead of taking the host process down.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Notify;

use super::error::AuthError;

/// Fired once by the caller (an `AbortSignal` in JavaScript); observed by the running call.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<(AtomicBool, Notify)>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }

    pub async fn cancelled(&self) {
        let notified = self.0 .1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.0 .0.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// Polls the inner future inside `catch_unwind`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<T, F: Future<Output = Result<T, AuthError>>> Future for CatchUnwind<F> {
    type Output = Result<T, AuthError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(AuthError::Internal(panic_text(&*payload)))),
        }
    }
}

/// Runs a synchronous piece of core work, a panic becoming [`AuthError::Internal`].
pub fn guard_sync<T>(f: impl FnOnce() -> Result<T, AuthError>) -> Result<T, AuthError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(AuthError::Internal(panic_text(&*payload))))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("panic: {text}")
}

/// Runs `fut` until it finishes or `cancel` fires; a panic inside becomes an error.
/// Dropping the future on cancel drops its connection too.
pub async fn guarded<T, F>(fut: F, cancel: Option<CancelToken>) -> Result<T, AuthError>
where
    F: Future<Output = Result<T, AuthError>>,
{
    let fut = CatchUnwind(Box::pin(fut));
    match cancel {
        None => fut.await,
        Some(cancel) => tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(AuthError::Aborted),
            result = fut => result,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        let r: Result<(), _> = guarded(async { panic!("boom") }, None).await;
        assert_eq!(r.unwrap_err(), AuthError::Internal("panic: boom".into()));
    }

    #[tokio::test]
    async fn cancel_before_and_during() {
        let c = CancelToken::default();
        c.cancel();
        let r: Result<(), _> = guarded(std::future::pending(), Some(c)).await;
        assert_eq!(r.unwrap_err(), AuthError::Aborted);

        let c = CancelToken::default();
        let c2 = c.clone();
        tokio::spawn(async move { c2.cancel() });
        let r: Result<(), _> = guarded(std::future::pending(), Some(c)).await;
        assert_eq!(r.unwrap_err(), AuthError::Aborted);
    }
}
