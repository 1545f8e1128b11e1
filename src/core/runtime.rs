//! The one tokio runtime of the process. It is made on first use and never torn down:
//! JavaScript environments (the main thread, worker threads) come and go, and a runtime
//! owned by any one of them would stop the calls of the others when it exits.

use std::future::Future;
use std::sync::OnceLock;

use super::error::AuthError;

/// One worker thread: token calls are few and I/O-bound, and a single worker avoids the
/// wake-ups and cross-thread hand-offs that a worker per core costs.
fn runtime() -> Result<&'static tokio::runtime::Runtime, AuthError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                // File stores, DNS lookups and key derivation queue beyond this, whatever
                // the number of managers.
                .max_blocking_threads(8)
                .thread_name("sonetel-auth")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AuthError::Internal(format!("the async runtime could not start: {e}")))
}

/// Runs `fut` on the runtime, detached.
pub fn spawn<F>(fut: F) -> Result<(), AuthError>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(fut);
    Ok(())
}
