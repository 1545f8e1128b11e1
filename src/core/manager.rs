//! A self-managing token: cached while it has time to live, refreshed ahead of expiry,
//! one request in flight for any number of callers, bounded retries of transient failures.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::client::RequestOptions;
use super::error::AuthError;
use super::grant::{request_token, Grant};
use super::run::{guarded, CancelToken};
use super::runtime;
use super::secret::Secret;
use super::token::TokenResponse;

pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Longest back-off between attempts, and the longest `Retry-After` we are willing to wait.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct ManagerConfig {
    pub username: Secret,
    pub password: Secret,
    pub request: RequestOptions,
    pub refresh_margin: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

type Outcome = Result<Arc<TokenResponse>, AuthError>;

#[derive(Default)]
struct State {
    current: Option<Arc<TokenResponse>>,
    /// False after `invalidate()`: the access token is not used, its refresh token still is.
    access_usable: bool,
    inflight: Option<watch::Receiver<Option<Outcome>>>,
    /// New tokens not yet handed to the app's `onToken`.
    unannounced: Vec<Arc<TokenResponse>>,
}

/// What [`TokenManager::subscribe`] hands a caller.
pub enum Ticket {
    Ready(Arc<TokenResponse>),
    Waiting(watch::Receiver<Option<Outcome>>),
}

impl Ticket {
    pub async fn wait(self) -> Outcome {
        let mut rx = match self {
            Ticket::Ready(token) => return Ok(token),
            Ticket::Waiting(rx) => rx,
        };
        loop {
            if let Some(outcome) = rx.borrow_and_update().clone() {
                return outcome;
            }
            if rx.changed().await.is_err() {
                return Err(AuthError::Internal(
                    "token fetch ended without a result".into(),
                ));
            }
        }
    }
}

pub struct TokenManager {
    config: ManagerConfig,
    state: Mutex<State>,
    /// Fired by [`TokenManager::close`]: a fetch for a manager nobody holds stops.
    closed: CancelToken,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("token_url", &self.config.request.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    pub fn new(config: ManagerConfig, restored: Option<TokenResponse>) -> Arc<Self> {
        Arc::new(TokenManager {
            config,
            state: Mutex::new(State {
                access_usable: restored.is_some(),
                current: restored.map(Arc::new),
                ..State::default()
            }),
            closed: CancelToken::default(),
        })
    }

    /// Stops the fetch in flight, if any, for good: called when nobody holds the manager.
    pub fn close(&self) {
        self.closed.cancel();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token, if it has more than the refresh margin left to live.
    pub fn cached(&self) -> Option<Arc<TokenResponse>> {
        let state = self.lock();
        self.usable(&state)
    }

    fn usable(&self, state: &State) -> Option<Arc<TokenResponse>> {
        let token = state.current.as_ref().filter(|_| state.access_usable)?;
        let expires = token.expires_at()?;
        (expires > SystemTime::now() + self.config.refresh_margin).then(|| token.clone())
    }

    /// Drops the cached access token; the next call fetches a new one.
    pub fn invalidate(&self) {
        self.lock().access_usable = false;
    }

    /// Tokens fetched since the last call, oldest first, each returned once.
    pub fn take_new_tokens(&self) -> Vec<Arc<TokenResponse>> {
        std::mem::take(&mut self.lock().unannounced)
    }

    /// A usable token now, or a place in the queue for the fetch under way (starting one
    /// if none is). Joining happens here, synchronously, so every call made while a fetch
    /// is in flight shares it.
    pub fn subscribe(self: &Arc<Self>) -> Result<Ticket, AuthError> {
        let mut state = self.lock();
        if let Some(token) = self.usable(&state) {
            return Ok(Ticket::Ready(token));
        }
        if let Some(rx) = &state.inflight {
            return Ok(Ticket::Waiting(rx.clone()));
        }
        let (tx, rx) = watch::channel(None);
        let previous = state.current.clone();
        let me = Arc::clone(self);
        // Spawned, so that a caller who gives up does not cancel it for the others.
        runtime::spawn(async move {
            let outcome = guarded(me.fetch(previous), Some(me.closed.clone())).await;
            {
                let mut state = me.lock();
                state.inflight = None;
                if let Ok(token) = &outcome {
                    state.current = Some(token.clone());
                    state.access_usable = true;
                    state.unannounced.push(token.clone());
                }
            }
            let _ = tx.send(Some(outcome));
        })?;
        state.inflight = Some(rx.clone());
        Ok(Ticket::Waiting(rx))
    }

    async fn fetch(&self, previous: Option<Arc<TokenResponse>>) -> Outcome {
        let mut refresh_refused = false;
        let mut attempt = 0;
        loop {
            let result = self.fetch_once(previous.as_deref(), &mut refresh_refused);
            let error = match result.await {
                Ok(token) => return Ok(Arc::new(token)),
                Err(e) => e,
            };
            if !error.is_transient() || attempt >= self.config.retries {
                return Err(error);
            }
            match self.backoff(attempt, &error) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
            attempt += 1;
        }
    }

    /// One try: the refresh grant while the refresh token lives, else the password grant.
    async fn fetch_once(
        &self,
        previous: Option<&TokenResponse>,
        refresh_refused: &mut bool,
    ) -> Result<TokenResponse, AuthError> {
        let refreshable = previous.filter(|p| {
            !*refresh_refused
                && p.refresh_token().is_some()
                && p.refresh_expires_at()
                    .is_none_or(|exp| exp > SystemTime::now() + Duration::from_secs(5))
        });
        if let Some(previous) = refreshable {
            let grant = Grant::RefreshToken {
                refresh_token: Secret::new(previous.refresh_token().unwrap_or_default().into()),
            };
            match request_token(&grant, &self.config.request).await {
                Ok(mut token) => {
                    token.inherit_refresh_token(previous);
                    return Ok(token);
                }
                // Revoked or expired: log in again with the password.
                Err(AuthError::Auth { .. }) => *refresh_refused = true,
                Err(e) => return Err(e),
            }
        }
        let grant = Grant::Password {
            username: self.config.username.clone(),
            password: self.config.password.clone(),
        };
        request_token(&grant, &self.config.request).await
    }

    /// Exponential back-off with jitter, or the server's `Retry-After` when it is longer.
    /// None when the server asks for a longer wait than we are willing to hold a caller.
    fn backoff(&self, attempt: u32, error: &AuthError) -> Option<Duration> {
        let base = self
            .config
            .retry_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_RETRY_DELAY);
        let jittered = base.mul_f64(0.5 + jitter() / 2.0);
        match error {
            AuthError::Http {
                retry_after: Some(wait),
                ..
            } if *wait > MAX_RETRY_DELAY => None,
            AuthError::Http {
                retry_after: Some(wait),
                ..
            } => Some(jittered.max(*wait)),
            _ => Some(jittered),
        }
    }
}

/// A number in [0, 1) good enough to spread retries apart.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(retry_delay: Duration) -> Arc<TokenManager> {
        TokenManager::new(
            ManagerConfig {
                username: Secret::new("u".into()),
                password: Secret::new("p".into()),
                request: RequestOptions::default(),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                retries: 3,
                retry_delay,
            },
            None,
        )
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let m = manager(Duration::from_millis(100));
        let net = AuthError::Network("x".into());
        let d0 = m.backoff(0, &net).unwrap();
        let d3 = m.backoff(3, &net).unwrap();
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
        assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
        let busy = |secs| AuthError::Http {
            status: 503,
            body: String::new(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(m.backoff(0, &busy(2)), Some(Duration::from_secs(2)));
        assert_eq!(m.backoff(0, &busy(3600)), None);
    }

    #[test]
    fn restored_token_is_served_from_cache_until_the_margin() {
        let b = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let exp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let jwt = format!("{}.{}.s", b("{}"), b(&format!("{{\"exp\":{exp}}}")));
        let token = TokenResponse::from_stored(format!(r#"{{"access_token":"{jwt}"}}"#)).unwrap();
        let m = TokenManager::new(
            ManagerConfig {
                username: Secret::new("u".into()),
                password: Secret::new("p".into()),
                request: RequestOptions::default(),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                retries: 0,
                retry_delay: DEFAULT_RETRY_DELAY,
            },
            Some(token),
        );
        assert!(m.cached().is_some());
        m.invalidate();
        assert!(m.cached().is_none());
    }
}
