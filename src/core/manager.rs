//! A self-managing token for production traffic: cached while it has time to live,
//! refreshed ahead of expiry, one request in flight for any number of callers, bounded
//! retries of transient failures, refused passwords remembered for a cool-down, expiry
//! that survives a skewed clock, the old token served while a refresh-ahead fails, and an
//! event for everything it does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::client::RequestOptions;
use super::error::AuthError;
use super::grant::{request_token, Grant, GrantKind};
use super::run::{guarded, CancelToken};
use super::runtime;
use super::secret::Secret;
use super::store::{self, Degraded, Held, Lock, StoreConfig, StoreError, Stored, Written};
use super::token::{epoch_secs, to_epoch_secs, TokenResponse};

pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(250);
pub const DEFAULT_AUTH_FAILURE_COOLDOWN: Duration = Duration::from_secs(5 * 60);
/// What a call may take in all by default: well inside the 29 to 60 s after which load
/// balancers and API gateways give up on a request handler, with room for the handler.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest back-off between attempts, and the longest `Retry-After` we are willing to wait.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// How long the fleet's lock is held without a renewal: what a dead or stopped holder
/// costs the others at most. Its holder renews it every third of it while it works.
pub const DEFAULT_STORE_LEASE: Duration = Duration::from_secs(5);
/// A token received less than this long ago, to replace one a Sonetel API refused, and
/// refused too, is not replaced: a new one would be refused as well (a missing scope, a
/// blocked account).
pub const API_REFUSAL_FRESH: Duration = Duration::from_secs(10);
/// After such a refusal, for this long a 401 is handed back without a new token.
pub const API_REFUSAL_HOLD: Duration = Duration::from_secs(60);
/// Paths held at once, at most (the oldest hold goes first).
const MAX_API_HOLDS: usize = 64;

#[derive(Debug)]
pub struct ManagerConfig {
    pub username: Secret,
    pub password: Secret,
    pub request: RequestOptions,
    pub refresh_margin: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub auth_failure_cooldown: Duration,
    /// How long a call may take in all (see [`super::api::CallBudget`]).
    pub call_timeout: Duration,
    /// Refresh on a timer ahead of expiry, without waiting for a call.
    pub auto_refresh: bool,
    /// Share the token with other processes through this store.
    pub store: Option<StoreConfig>,
}

/// What the manager does, as it does it. No event holds a secret but `Token`, whose
/// token is for the app's `onToken`.
#[derive(Clone, Debug)]
pub enum ManagerEvent {
    /// A token request is about to be sent.
    Request { grant: GrantKind, attempt: u32 },
    /// A new token arrived.
    Token {
        grant: GrantKind,
        token: Arc<TokenResponse>,
        expires_at: Option<SystemTime>,
        /// How long it is handed out without a new fetch (see `fresh_for`).
        fresh: Option<Duration>,
    },
    /// Attempt `attempt` failed for a transient reason; the next one follows `delay`.
    Retry {
        attempt: u32,
        delay: Duration,
        error: AuthError,
    },
    /// An API read answered `status` (429 or 503) is sent again after `delay`.
    ApiRetry {
        method: String,
        path: String,
        status: u16,
        attempt: u32,
        delay: Duration,
    },
    /// The refresh token was refused; the password grant follows.
    Fallback { error: AuthError },
    /// The server refused a grant.
    Refused { grant: GrantKind, error: AuthError },
    /// The password is not sent again before `until`.
    Cooldown { until: SystemTime },
    /// A refresh ahead of expiry failed; callers got the still-valid token.
    StaleServed { error: AuthError },
    /// A token another process fetched was taken from the store.
    Shared {
        token: Arc<TokenResponse>,
        expires_at: Option<SystemTime>,
        fresh: Option<Duration>,
    },
    /// The token `id` is no longer handed out (`invalidate`, or a 401 from the API).
    Invalidated { id: u64 },
    /// The store failed; this process fetches on its own until it works again.
    StoreUnavailable { error: StoreError },
    /// The store works again; the token is shared again.
    StoreAvailable,
    /// The store works, less well than it should (see [`Degraded`]); `detail` says more,
    /// and names no secret.
    StoreDegraded {
        reason: Degraded,
        detail: Option<&'static str>,
    },
    /// A Sonetel API refused a token just received: until `until`, a 401 is handed back
    /// and no new token is asked for because of it.
    ApiRefused { until: SystemTime },
}

/// Receives the manager's events, on the runtime's thread.
pub type Listener = Arc<dyn Fn(ManagerEvent) + Send + Sync>;

type Outcome = Result<Arc<TokenResponse>, AuthError>;

#[derive(Default)]
struct State {
    current: Option<Arc<TokenResponse>>,
    /// False after `invalidate()`: the access token is not used, its refresh token still is.
    access_usable: bool,
    inflight: Option<watch::Receiver<Option<Outcome>>>,
    /// The server's clock minus ours, in seconds, from the last token received.
    skew: Option<f64>,
    /// A refused password: not sent again before this time.
    cooldown: Option<(SystemTime, AuthError)>,
    /// After a refresh ahead of expiry failed: the next one waits until then.
    refresh_not_before: Option<SystemTime>,
    refresh_failures: u32,
    /// Bumped with every new token, so an auto-refresh timer for an older one stands down.
    generation: u64,
    /// The access token a Sonetel API refused: not to be taken from the store again.
    rejected: Option<String>,
    /// The refresh token Sonetel refused: never sent again, so the password's cool-down
    /// cannot be slipped past by a refresh-then-password on every call.
    refused_refresh: Option<String>,
    /// The store failed last time it was used.
    store_down: bool,
    /// The fleet's lock was found stuck (`true`: only by being held longer than a fetch
    /// takes): this process fetches on its own, without waiting for it, until it sees it
    /// released.
    lock_stuck: Option<bool>,
    /// A value this process wrote or took is expected in the store until then: missing
    /// before that, it was evicted.
    stored_until: Option<SystemTime>,
    /// Paths where a token just received was refused by a Sonetel API: until then, a 401
    /// there does not cost a new token.
    api_holds: Vec<(String, Instant)>,
    /// The store's clock minus ours (Redis `TIME`), from the last read.
    clock_behind: Option<f64>,
    /// After a replacement token was refused: until when 401s on other paths get one new
    /// token between them, and whether it was given.
    api_window: Option<(Instant, bool)>,
    /// The last token a Sonetel API refused and this process replaced, and the path.
    api_replaced: Option<(u64, String)>,
    /// The store-degraded reasons already said during the fetch under way.
    degraded_said: Vec<Degraded>,
}

/// How a new token came.
enum Obtained {
    /// This process asked Sonetel.
    Fetched(GrantKind, TokenResponse),
    /// Another process did, and left it in the store.
    Adopted(TokenResponse),
}

/// Why sharing through the store did not give a token.
enum NotShared {
    /// The store failed: fetch alone.
    Store(StoreError),
    /// The store worked; Sonetel did not.
    Sonetel(AuthError),
}

/// How a token's life looks from this process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Life {
    /// When it stops working, by our clock; None when nothing says.
    pub expires: Option<SystemTime>,
    /// How long the server meant it to live, when it says.
    pub lifetime: Option<Duration>,
}

/// How long a caller waits for a refresh ahead of expiry before it is given the cached
/// token, still valid, while the refresh carries on.
pub const REFRESH_PATIENCE: Duration = Duration::from_secs(2);

/// What [`TokenManager::subscribe`] hands a caller.
pub enum Ticket {
    Ready(Arc<TokenResponse>),
    Waiting(watch::Receiver<Option<Outcome>>),
    /// A refresh ahead of expiry is under way: its token if it comes soon enough, else
    /// `stale`, which is good until `expires`.
    Refreshing {
        rx: watch::Receiver<Option<Outcome>>,
        stale: Arc<TokenResponse>,
        expires: SystemTime,
    },
}

impl Ticket {
    /// The token for a caller: a slow refresh ahead of expiry makes it wait no longer
    /// than [`REFRESH_PATIENCE`], and never past the cached token's expiry.
    pub async fn wait(self) -> Outcome {
        match self {
            Ticket::Ready(token) => Ok(token),
            Ticket::Waiting(rx) => Self::outcome(rx).await,
            Ticket::Refreshing { rx, stale, expires } => {
                let left = expires
                    .checked_sub(Duration::from_secs(1))
                    .and_then(|t| t.duration_since(SystemTime::now()).ok())
                    .unwrap_or_default();
                tokio::time::timeout(left.min(REFRESH_PATIENCE), Self::outcome(rx))
                    .await
                    .unwrap_or(Ok(stale))
            }
        }
    }

    /// The fetch's own result, however long it takes (for the refresh timer).
    pub async fn settled(self) -> Outcome {
        match self {
            Ticket::Ready(token) => Ok(token),
            Ticket::Waiting(rx) | Ticket::Refreshing { rx, .. } => Self::outcome(rx).await,
        }
    }

    async fn outcome(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
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
    /// Taken out by [`TokenManager::close`], so its connections go with the last fetch.
    store: Mutex<Option<Arc<StoreConfig>>>,
    state: Mutex<State>,
    listener: Option<Listener>,
    /// Fired by [`TokenManager::close`]: a fetch for a manager nobody holds stops.
    closed: CancelToken,
    me: Weak<TokenManager>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("token_url", &self.config.request.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    pub fn new(
        mut config: ManagerConfig,
        restored: Option<TokenResponse>,
        listener: Option<Listener>,
    ) -> Arc<Self> {
        let store = Mutex::new(config.store.take().map(Arc::new));
        let manager = Arc::new_cyclic(|me| TokenManager {
            config,
            store,
            state: Mutex::new(State {
                access_usable: restored.is_some(),
                current: restored.map(Arc::new),
                ..State::default()
            }),
            listener,
            closed: CancelToken::default(),
            me: me.clone(),
        });
        let generation = manager.lock().generation;
        manager.schedule_auto_refresh(generation);
        manager
    }

    /// Stops for good: the fetch in flight and the refresh timer end, the store is let go,
    /// and later calls fail with [`AuthError::Closed`]. The future resolves once the fetch
    /// in flight, if any, has ended (and with it the last use of the store).
    pub fn close(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.closed.cancel();
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
        let inflight = self.lock().inflight.clone();
        async move {
            if let Some(rx) = inflight {
                let _ = Ticket::outcome(rx).await;
            }
            drop(store);
        }
    }

    /// `error` without this manager's password or current tokens in any text it carries:
    /// an API may echo what it was sent.
    pub fn redact_secrets(&self, error: AuthError) -> AuthError {
        let current = self.lock().current.clone();
        let refresh = current.as_deref().and_then(TokenResponse::refresh_token);
        let access = current.as_deref().map(TokenResponse::access_token);
        let secrets: Vec<&str> = [Some(self.config.password.expose()), refresh, access]
            .into_iter()
            .flatten()
            .collect();
        error.redact(&secrets)
    }

    /// How many times a transient failure is tried again.
    pub fn retries(&self) -> u32 {
        self.config.retries
    }

    /// How long a call (its token, requests and retries together) may take in all.
    pub fn call_timeout(&self) -> Duration {
        self.config.call_timeout
    }

    /// The back-off before retry `attempt` (from 0) when the server named no wait.
    pub fn retry_backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .retry_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_RETRY_DELAY);
        base.mul_f64(0.5 + jitter() / 2.0)
    }

    /// An API read answered 429 or 503 is sent again after `delay`.
    pub fn api_retry(&self, method: &str, path: &str, status: u16, attempt: u32, delay: Duration) {
        self.emit(ManagerEvent::ApiRetry {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            attempt,
            delay,
        });
    }

    /// Whether [`TokenManager::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// How long `token`, if it is the current one, is handed out without a new fetch:
    /// until its refresh margin starts (and at least a second before it expires). None:
    /// as long as nothing invalidates it (a token received here that says no expiry).
    /// Returns its life too, worked out once for both.
    pub fn fresh_for(&self, token: &TokenResponse) -> (Option<Duration>, Life) {
        let life = self.life_of(token);
        (self.fresh_with(token, &life), life)
    }

    fn fresh_with(&self, token: &TokenResponse, life: &Life) -> Option<Duration> {
        let Some(expires) = life.expires else {
            return if token.received_at().is_some() {
                None
            } else {
                Some(Duration::ZERO)
            };
        };
        let now = SystemTime::now();
        let until = expires
            .checked_sub(self.margin(life).max(Duration::from_secs(1)))
            .unwrap_or(now);
        Some(until.duration_since(now).unwrap_or(Duration::ZERO))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: ManagerEvent) {
        if let Some(listener) = &self.listener {
            listener(event);
        }
    }

    /// How `token`'s life looks from here. A token received in this process expires its
    /// stated lifetime (`expires_in`, or `exp − iat`, the shorter) after it arrived, which
    /// no skew between the clocks can change. A stored one expires at its `exp`, moved by
    /// the skew measured on the last token received, if any.
    pub fn life(token: &TokenResponse, skew: Option<f64>) -> Life {
        let t = token.times();
        let signed = t
            .exp
            .zip(t.iat)
            .map(|(exp, iat)| exp - iat)
            .filter(|l| *l >= 0.0);
        let secs = |s: f64| Duration::from_secs_f64(s.min(1e10));
        let local_exp = t.exp.map(|exp| epoch_secs(exp - skew.unwrap_or(0.0)));
        match token.received_at() {
            Some(received) => {
                let stated = [t.expires_in, signed]
                    .into_iter()
                    .flatten()
                    .reduce(f64::min);
                Life {
                    expires: stated.map(|l| received + secs(l)).or(local_exp),
                    lifetime: stated.map(secs),
                }
            }
            None => Life {
                expires: local_exp,
                lifetime: signed.map(secs),
            },
        }
    }

    /// The skew to judge a stored token by: the one this process measured, or more when
    /// the token itself shows this clock is behind (issued, by the server's clock, later
    /// than this clock says it is now). It never comes from the token's writer, and it
    /// can only make a token expire sooner here.
    /// So does the store's own clock (Redis `TIME`), when it is ahead of ours: `behind`.
    /// Both only ever count when they say this clock is behind, and by less than a day.
    fn skew_for_stored(
        measured: Option<f64>,
        behind: Option<f64>,
        token: &TokenResponse,
    ) -> Option<f64> {
        let issued_ahead = token
            .times()
            .iat
            .map(|iat| iat - to_epoch_secs(SystemTime::now()));
        [measured]
            .into_iter()
            .chain([issued_ahead, behind].map(|b| b.filter(|b| *b > 1.0 && *b < 86_400.0)))
            .flatten()
            .reduce(f64::max)
    }

    /// The refresh margin for a token: the configured one, at most half its lifetime, so
    /// a short-lived token is not fetched again on every call.
    fn margin(&self, life: &Life) -> Duration {
        match life.lifetime {
            Some(l) => self.config.refresh_margin.min(l / 2),
            None => self.config.refresh_margin,
        }
    }

    /// Where and how its requests go: the token endpoint's client, trust and deadline, which
    /// API calls share.
    pub fn request_options(&self) -> &RequestOptions {
        &self.config.request
    }

    /// `token`'s life as this manager sees it now.
    pub fn life_of(&self, token: &TokenResponse) -> Life {
        Self::life(token, self.lock().skew)
    }

    /// The cached token and its life, if there is one to use.
    pub fn cached(&self) -> Option<(Arc<TokenResponse>, Life)> {
        let state = self.lock();
        let token = state.current.clone().filter(|_| state.access_usable)?;
        let life = Self::life(&token, state.skew);
        Some((token, life))
    }

    /// Drops the cached access token; the next call fetches a new one. With the token
    /// that a Sonetel API refused, only while that token is still the current one: many
    /// callers reporting the same stale token cause one new request. Returns whether the
    /// token was dropped.
    pub fn invalidate(&self, stale: Option<&str>) -> bool {
        let mut state = self.lock();
        let current = state.current.as_ref().map(|t| t.access_token());
        if stale.is_some() && stale != current {
            return false;
        }
        state.rejected = current.map(str::to_owned);
        state.access_usable = false;
        let id = state.current.as_ref().map(|t| t.id());
        drop(state);
        if let Some(id) = id {
            self.emit(ManagerEvent::Invalidated { id });
        }
        true
    }

    /// A Sonetel API answered 401 to `token` on `path`. Returns whether to get a new
    /// token (and try again). Not when the token refused is the one this process just
    /// fetched to replace a refused one and that no API has accepted yet (`retry` says
    /// the refusal came on the retry with it): another would be refused as well (a
    /// missing scope, a blocked account). That holds `path` (a 401 there is handed back)
    /// and opens a window in which 401s on other paths get one new token between them,
    /// not one each; a token that works closes it. Without that, an API that refuses
    /// every token would cost a token request on every call.
    pub fn api_refused(&self, path: &str, token: &str, retry: bool) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        state.api_holds.retain(|(_, until)| now < *until);
        if state.api_holds.iter().any(|(p, _)| p == path) {
            return false;
        }
        let current = state
            .current
            .as_ref()
            .filter(|t| t.access_token() == token)
            .cloned();
        // Fetched here after the refusal (a token taken from the store may just be as
        // stale as ours: it is dropped, not held against the API) and, for a request that
        // could not be retried, refused on the path that made it, moments after.
        let replacement_refused = match (&current, &state.api_replaced) {
            (Some(t), Some((id, replaced_on))) if t.id() > *id => {
                t.received_at().is_some_and(|at| {
                    retry
                        || (replaced_on == path
                            && at.elapsed().is_ok_and(|age| age < API_REFUSAL_FRESH))
                })
            }
            _ => false,
        };
        if replacement_refused {
            if state.api_holds.len() >= MAX_API_HOLDS {
                state.api_holds.remove(0);
            }
            state
                .api_holds
                .push((path.to_owned(), now + API_REFUSAL_HOLD));
            // A window already open stays spent: each new path does not buy a token.
            let spent = state.api_window.is_some_and(|(until, _)| now < until);
            state.api_window = Some((now + API_REFUSAL_HOLD, spent));
            drop(state);
            self.emit(ManagerEvent::ApiRefused {
                until: SystemTime::now() + API_REFUSAL_HOLD,
            });
            return false;
        }
        match state.api_window {
            Some((until, true)) if now < until => return false,
            Some((until, false)) if now < until => state.api_window = Some((until, true)),
            _ => {}
        }
        if let Some(current) = current {
            state.api_replaced = Some((current.id(), path.to_owned()));
        }
        drop(state);
        self.invalidate(Some(token));
        !retry
    }

    /// A Sonetel API accepted `token`: a replacement token that works is no suspect.
    pub fn api_accepted(&self, token: &TokenResponse) {
        let mut state = self.lock();
        if state
            .api_replaced
            .as_ref()
            .is_some_and(|(id, _)| token.id() > *id)
        {
            state.api_replaced = None;
            state.api_window = None;
        }
    }

    /// A token to use now, or a place in the queue for the fetch under way (starting one
    /// if none is). Joining happens here, synchronously, so every call made while a fetch
    /// is in flight shares it.
    pub fn subscribe(&self) -> Result<Ticket, AuthError> {
        if self.is_closed() {
            return Err(AuthError::Closed);
        }
        let mut state = self.lock();
        let now = SystemTime::now();
        // A token still valid but inside its margin, and when it expires.
        let mut stale: Option<(Arc<TokenResponse>, SystemTime)> = None;
        if let Some(token) = state.current.clone().filter(|_| state.access_usable) {
            let life = Self::life(&token, state.skew);
            match life.expires {
                // Nothing says when it ends: a token received here is used until a 401
                // invalidates it; a stored one is not trusted.
                None if token.received_at().is_some() => return Ok(Ticket::Ready(token)),
                None => {}
                Some(expires) if now + self.margin(&life) < expires => {
                    return Ok(Ticket::Ready(token))
                }
                // Inside the margin but still valid: refresh, unless a refresh just failed.
                Some(expires) if now < expires => {
                    if state.inflight.is_none() && state.refresh_not_before.is_some_and(|t| now < t)
                    {
                        return Ok(Ticket::Ready(token));
                    }
                    stale = Some((token, expires));
                }
                Some(_) => {}
            }
        }
        let ticket = |rx: watch::Receiver<Option<Outcome>>| match stale.clone() {
            Some((stale, expires)) => Ticket::Refreshing { rx, stale, expires },
            None => Ticket::Waiting(rx),
        };
        if let Some(rx) = &state.inflight {
            return Ok(ticket(rx.clone()));
        }
        if let Some(error) = self.cooling_down(&state, now) {
            return match stale {
                Some((token, _)) => Ok(Ticket::Ready(token)),
                None => Err(error),
            };
        }
        let rx = self.start_fetch(&mut state, stale.as_ref().map(|(t, _)| t.clone()))?;
        Ok(ticket(rx))
    }

    /// The cool-down error, when a new token would need the password and it was refused
    /// a short while ago.
    fn cooling_down(&self, state: &State, now: SystemTime) -> Option<AuthError> {
        let (until, refusal) = state.cooldown.as_ref()?;
        let remaining = until.duration_since(now).ok()?;
        if Self::refreshable(state.current.as_deref(), state).is_some() {
            return None; // the refresh grant needs no password
        }
        Some(AuthError::CoolingDown {
            refusal: Box::new(refusal.clone()),
            remaining,
        })
    }

    /// The token whose refresh token can be used: there is one, it has not expired, and
    /// Sonetel has not refused it.
    fn refreshable<'t>(
        token: Option<&'t TokenResponse>,
        state: &State,
    ) -> Option<&'t TokenResponse> {
        token.filter(|t| {
            t.refresh_token()
                .is_some_and(|r| state.refused_refresh.as_deref() != Some(r))
                && t.refresh_exp().is_none_or(|exp| {
                    epoch_secs(exp - state.skew.unwrap_or(0.0))
                        > SystemTime::now() + Duration::from_secs(5)
                })
        })
    }

    /// Starts the one fetch; `stale_ok` is a token still valid, served if it fails for a
    /// transient reason.
    fn start_fetch(
        &self,
        state: &mut State,
        stale_ok: Option<Arc<TokenResponse>>,
    ) -> Result<watch::Receiver<Option<Outcome>>, AuthError> {
        let (tx, rx) = watch::channel(None);
        let previous = state.current.clone();
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| AuthError::Internal("the token manager is gone".into()))?;
        // Spawned, so that a caller who gives up does not cancel it for the others.
        runtime::spawn(async move {
            let fetched = guarded(
                me.obtain(previous, stale_ok.is_some()),
                Some(me.closed.clone()),
            )
            .await;
            let outcome = me.settle(fetched, stale_ok);
            let _ = tx.send(Some(outcome));
        })?;
        state.inflight = Some(rx.clone());
        Ok(rx)
    }

    /// Records what a fetch brought and decides what its waiters get.
    fn settle(
        &self,
        fetched: Result<Obtained, AuthError>,
        stale_ok: Option<Arc<TokenResponse>>,
    ) -> Outcome {
        let mut state = self.lock();
        state.inflight = None;
        let now = SystemTime::now();
        match fetched {
            Ok(obtained) => {
                let (token, event) = match obtained {
                    Obtained::Fetched(grant, token) => {
                        let token = Arc::new(token);
                        if let (Some(iat), Some(received)) =
                            (token.times().iat, token.received_at())
                        {
                            state.skew = Some(iat - to_epoch_secs(received));
                        }
                        let life = Self::life(&token, state.skew);
                        let event = ManagerEvent::Token {
                            grant,
                            token: token.clone(),
                            expires_at: life.expires,
                            fresh: self.fresh_with(&token, &life),
                        };
                        (token, event)
                    }
                    Obtained::Adopted(token) => {
                        let token = Arc::new(token);
                        state.skew = Self::skew_for_stored(state.skew, state.clock_behind, &token);
                        let life = Self::life(&token, state.skew);
                        let event = ManagerEvent::Shared {
                            token: token.clone(),
                            expires_at: life.expires,
                            fresh: self.fresh_with(&token, &life),
                        };
                        (token, event)
                    }
                };
                state.current = Some(token.clone());
                state.access_usable = true;
                state.refresh_not_before = None;
                state.refresh_failures = 0;
                state.cooldown = None;
                state.rejected = None;
                state.generation += 1;
                let generation = state.generation;
                drop(state);
                self.emit(event);
                self.schedule_auto_refresh(generation);
                Ok(token)
            }
            Err(error) => {
                let still_valid = stale_ok.filter(|t| {
                    Self::life(t, state.skew)
                        .expires
                        .is_some_and(|expires| now < expires)
                });
                match still_valid {
                    Some(token) if error.is_transient() => {
                        let wait = self.backoff(state.refresh_failures, &error);
                        state.refresh_failures = state.refresh_failures.saturating_add(1);
                        state.refresh_not_before = Some(now + wait.unwrap_or(MAX_RETRY_DELAY));
                        drop(state);
                        self.emit(ManagerEvent::StaleServed { error });
                        Ok(token)
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// A new token: through the store when there is one (another process may have just
    /// fetched it; else this one fetches it under the fleet's lock and leaves it there),
    /// on its own when there is none or it fails.
    async fn obtain(
        &self,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
    ) -> Result<Obtained, AuthError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(config) = store.as_deref() {
            self.lock().degraded_said.clear();
            match self.via_store(config, previous.clone(), one_try).await {
                Ok((obtained, None)) => {
                    self.store_worked();
                    return Ok(obtained);
                }
                // The token is good, but it could not be left in the store.
                Ok((obtained, Some(e))) => {
                    self.store_failed(e);
                    return Ok(obtained);
                }
                Err(NotShared::Sonetel(e)) => {
                    self.store_worked();
                    return Err(e);
                }
                Err(NotShared::Store(e)) => self.store_failed(e),
            }
            // Alone, but no password before the store is read again: with rotating
            // refresh tokens, ours may be refused because another process used it and
            // left the new one there.
            if let Some((grant, token)) = self.fetch(previous, one_try, true).await? {
                return Ok(Obtained::Fetched(grant, token));
            }
            match self.via_store(config, None, one_try).await {
                Ok((obtained, error)) => {
                    match error {
                        None => self.store_worked(),
                        Some(e) => self.store_failed(e),
                    }
                    return Ok(obtained);
                }
                Err(NotShared::Sonetel(e)) => return Err(e),
                Err(NotShared::Store(e)) => self.store_failed(e),
            }
            let (grant, token) = self.fetch_through(None, one_try).await?;
            return Ok(Obtained::Fetched(grant, token));
        }
        let (grant, token) = self.fetch_through(previous, one_try).await?;
        Ok(Obtained::Fetched(grant, token))
    }

    /// Says how the store is degraded: each reason once per fetch.
    fn degraded(&self, reason: Degraded, detail: Option<&'static str>) {
        let mut state = self.lock();
        if state.degraded_said.contains(&reason) {
            return;
        }
        state.degraded_said.push(reason);
        drop(state);
        self.emit(ManagerEvent::StoreDegraded { reason, detail });
    }

    fn store_worked(&self) {
        let was_down = std::mem::replace(&mut self.lock().store_down, false);
        if was_down {
            self.emit(ManagerEvent::StoreAvailable);
        }
    }

    fn store_failed(&self, error: StoreError) {
        let was_down = std::mem::replace(&mut self.lock().store_down, true);
        if !was_down {
            self.emit(ManagerEvent::StoreUnavailable { error });
        }
    }

    /// How long one whole fetch with its retries can take: how long a live holder of the
    /// fleet's lock, renewing it, is waited for.
    fn fetch_bound(&self) -> Duration {
        let attempts = self.config.retries + 1;
        self.config.request.timeout * attempts
            + MAX_RETRY_DELAY * self.config.retries
            + Duration::from_secs(1)
    }

    /// The fleet protocol: take a fresh token from the store if one is there; else take
    /// the lock, look again (the holder before us may have just written one), and only
    /// then ask Sonetel, leaving the answer in the store. Without the lock, wait for the
    /// token its holder will leave, polling with back-off; a lock that will not end by
    /// itself (no expiry, not ours, not renewed, held past a fetch) is remembered, and
    /// this process fetches on its own until it sees it released.
    async fn via_store(
        &self,
        config: &StoreConfig,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
    ) -> Result<(Obtained, Option<StoreError>), NotShared> {
        let lease = config.lease;
        let patience = self.fetch_bound() + lease;
        let longest_pause = (lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        let mut waited = false;
        loop {
            let stored = self.read_store(config).await?;
            if let Some(adopted) = self.adoptable(&stored) {
                return Ok((adopted, None));
            }
            let stuck_by_time = self.lock().lock_stuck;
            if let Some(by_time) = stuck_by_time {
                // Seen released: a free lock, or (for one that looked stuck) a lease its
                // holder renews. One that was only held too long must be seen free.
                match bounded(config.timeout, config.store.held(lease)).await? {
                    Held::Free => self.lock().lock_stuck = None,
                    Held::Leased if !by_time => self.lock().lock_stuck = None,
                    _ => {
                        return self
                            .fetch_and_leave(config, stored, previous, one_try, None)
                            .await
                    }
                }
            }
            if let Some(lock) = bounded(config.timeout, config.store.try_lock(lease)).await? {
                return self.holding(config, lock, previous, one_try).await;
            }
            let stuck = match bounded(config.timeout, config.store.held(lease)).await? {
                Held::Stuck(why) if waited => Some((why, false)),
                _ if started.elapsed() > patience => {
                    Some(("the lock has been held longer than a fetch takes", true))
                }
                _ => None,
            };
            if let Some((why, by_time)) = stuck {
                self.lock().lock_stuck = Some(by_time);
                self.degraded(Degraded::LockStuck, Some(why));
                return self
                    .fetch_and_leave(config, stored, previous, one_try, None)
                    .await;
            }
            waited = true;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(longest_pause);
        }
    }

    /// Holds the lock while `fetch_locked` works, renewing its lease every third of it
    /// (the watchdog), and releases it after.
    async fn holding(
        &self,
        config: &StoreConfig,
        lock: Lock,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
    ) -> Result<(Obtained, Option<StoreError>), NotShared> {
        let lost = AtomicBool::new(false);
        let mut held = Releasing {
            store: config.store.clone(),
            lock: Some(lock),
            timeout: config.timeout,
        };
        let result = {
            let Some(lock) = held.lock.as_ref() else {
                unreachable!("held until released")
            };
            let work = self.fetch_locked(config, previous, one_try, lock);
            let watchdog = async {
                loop {
                    tokio::time::sleep(config.lease / 3).await;
                    // A failed renewal is tried again; a lock that is not ours any more
                    // (this process was stopped past its lease) is given up.
                    // Bounded by a third of the lease too: the next try must come in time.
                    let within = config.timeout.min(config.lease / 3);
                    if let Ok(false) = bounded(within, config.store.renew(lock, config.lease)).await
                    {
                        lost.store(true, Ordering::Relaxed);
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                result = work => result,
                () = watchdog => unreachable!("the watchdog never ends"),
            }
        };
        let Some(lock) = held.lock.take() else {
            unreachable!("held until released")
        };
        match bounded(config.timeout, config.store.unlock(lock)).await {
            Ok(true) => {}
            Ok(false)
                if lost.load(Ordering::Relaxed)
                    || self.lock().degraded_said.contains(&Degraded::LeaseLost) => {}
            Ok(false) => self.degraded(
                Degraded::LockNotReleased,
                Some("the lock was no longer ours"),
            ),
            Err(_) => self.degraded(
                Degraded::LockNotReleased,
                Some("the store failed; the lock lapses at the end of its lease"),
            ),
        }
        result
    }

    /// Under the lock: the store once more, then Sonetel, then the store.
    async fn fetch_locked(
        &self,
        config: &StoreConfig,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
        lock: &Lock,
    ) -> Result<(Obtained, Option<StoreError>), NotShared> {
        let stored = self.read_store(config).await?;
        if let Some(adopted) = self.adoptable(&stored) {
            return Ok((adopted, None));
        }
        self.fetch_and_leave(config, stored, previous, one_try, Some(lock))
            .await
    }

    /// Sonetel, then the store: with the stored refresh token when there is one (it is
    /// the latest: a rotation may have made ours stale). Under the lock, or beside a
    /// stuck one (`lock` None); either way the token is left in the store unless someone
    /// wrote a newer one meanwhile, so that readers still share it.
    async fn fetch_and_leave(
        &self,
        config: &StoreConfig,
        stored: Option<TokenResponse>,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
        lock: Option<&Lock>,
    ) -> Result<(Obtained, Option<StoreError>), NotShared> {
        let seen = stored.as_ref().map(|t| t.access_token().to_owned());
        let base = match stored {
            Some(token) if token.refresh_token().is_some() => Some(Arc::new(token)),
            _ => previous,
        };
        let (grant, token) = self
            .fetch_through(base, one_try)
            .await
            .map_err(NotShared::Sonetel)?;
        let write_error = self.leave(config, &token, lock, seen).await;
        Ok((Obtained::Fetched(grant, token), write_error))
    }

    /// Leaves `token` in the store, unless the store's token changed since this process
    /// read it (`seen`): a holder that resumed after its lease lapsed, or a process beside
    /// a stuck lock, never overwrites a newer token. Returns the store's failure, if any.
    async fn leave(
        &self,
        config: &StoreConfig,
        token: &TokenResponse,
        lock: Option<&Lock>,
        seen: Option<String>,
    ) -> Option<StoreError> {
        let now_there = match self.read_store(config).await {
            Ok(stored) => stored.map(|t| t.access_token().to_owned()),
            Err(NotShared::Store(e)) => return Some(e),
            Err(NotShared::Sonetel(_)) => None,
        };
        if now_there.is_some() && now_there != seen {
            if lock.is_some() {
                // Someone wrote while we held the lock: our lease lapsed under us.
                self.degraded(Degraded::LeaseLost, None);
            }
            return None;
        }
        let sealing = match &config.sealing {
            Some(sealing) => match sealing.key().await {
                Ok(key) => Some(key),
                Err(e) => return Some(e),
            },
            None => None,
        };
        let Some(value) = store::encode(token, sealing, &config.key, &config.owner) else {
            return Some(StoreError("the token could not be encoded".into()));
        };
        let keep = self.keep_for(token);
        match bounded(config.timeout, config.store.write(value, keep, lock)).await {
            Ok(written) => {
                match written {
                    Written::Yes => {}
                    Written::LockLost => {
                        self.degraded(Degraded::LeaseLost, None);
                        return None;
                    }
                    Written::Degraded(reason) => self.degraded(reason, None),
                }
                self.lock().stored_until = Some(SystemTime::now() + keep);
                None
            }
            Err(NotShared::Store(e)) => Some(e),
            Err(NotShared::Sonetel(_)) => None,
        }
    }

    /// How long the store keeps a token: as long as its refresh token lives (else its
    /// access token), so that the latest refresh token is always there to use.
    fn keep_for(&self, token: &TokenResponse) -> Duration {
        let skew = self.lock().skew.unwrap_or(0.0);
        let until = token
            .refresh_exp()
            .map(|exp| epoch_secs(exp - skew))
            .or_else(|| Self::life(token, Some(skew)).expires);
        until
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::from_secs(24 * 3600))
            .max(Duration::from_secs(1))
    }

    /// The store's token; None when there is none, or when what is there is not ours to
    /// read (another program's value, another secret, another account's token, too large,
    /// not a regular file): it is overwritten with the next token.
    async fn read_store(&self, config: &StoreConfig) -> Result<Option<TokenResponse>, NotShared> {
        let read = bounded(config.timeout, config.store.read()).await?;
        if let Some(offset) = config.store.clock_offset() {
            self.lock().clock_behind = Some(offset);
        }
        let value = match read {
            Stored::Value(value) => value,
            Stored::Missing => {
                let expected = std::mem::take(&mut self.lock().stored_until);
                if expected.is_some_and(|until| SystemTime::now() + Duration::from_secs(1) < until)
                {
                    self.degraded(Degraded::ValueEvicted, None);
                }
                return Ok(None);
            }
            Stored::Unusable(reason) => {
                self.degraded(reason, None);
                return Ok(None);
            }
        };
        let sealing = match &config.sealing {
            Some(sealing) => Some(sealing.key().await.map_err(NotShared::Store)?),
            None => None,
        };
        let Some(token) = store::decode(&value, sealing, &config.key, &config.owner) else {
            return Ok(None);
        };
        // The owner hash is anyone's to compute; the token's own claims are the account's.
        if !self.names_our_account(&token) {
            self.degraded(
                Degraded::ValueNotOurs,
                Some("the stored token names another account"),
            );
            return Ok(None);
        }
        Ok(Some(token))
    }

    /// Whether the token's `user_name` claim, where it has one, is our user name (an
    /// e-mail address, compared without regard to case). A claim that is not a string
    /// names no one we know.
    fn names_our_account(&self, token: &TokenResponse) -> bool {
        match token.claim("user_name") {
            Some(serde_json::Value::String(name)) => {
                name.eq_ignore_ascii_case(self.config.username.expose())
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The stored token, if it is one to use: not the one a Sonetel API refused, and with
    /// more than the refresh margin to live, judged by this process's clock and only the
    /// skew it measured itself.
    fn adoptable(&self, stored: &Option<TokenResponse>) -> Option<Obtained> {
        let token = stored.as_ref()?;
        let mut state = self.lock();
        if state.rejected.as_deref() == Some(token.access_token()) {
            return None;
        }
        let fresh_by = |behind: Option<f64>| {
            let life = Self::life(token, Self::skew_for_stored(state.skew, behind, token));
            let fresh = life
                .expires
                .is_some_and(|expires| SystemTime::now() + self.margin(&life) < expires);
            (fresh, life)
        };
        let (fresh, life) = fresh_by(state.clock_behind);
        if fresh {
            state.stored_until = life.expires;
            return Some(Obtained::Adopted(token.clone()));
        }
        // Only the store's clock (ahead of ours) says it is too old to share: one of the
        // two clocks is wrong, and the fleet fetches a token per process until it is fixed.
        let by_store_clock = state.clock_behind.is_some() && fresh_by(None).0;
        drop(state);
        if by_store_clock {
            self.degraded(
                Degraded::ClockBehind,
                Some("Redis's clock is ahead of this machine's, so the stored token looks too old to share"),
            );
        }
        None
    }

    /// [`TokenManager::fetch`] through to the password grant, which always ends it.
    async fn fetch_through(
        &self,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
    ) -> Result<(GrantKind, TokenResponse), AuthError> {
        self.fetch(previous, one_try, false)
            .await?
            .ok_or_else(|| AuthError::Internal("no token".into()))
    }

    /// Gets a new token: the refresh grant while the refresh token lives, else the
    /// password grant; transient failures are retried with back-off, unless a still-valid
    /// token can be served instead (`one_try`), when the next call tries again.
    /// With `defer_password`, a refused refresh token ends it with None instead of the
    /// password grant.
    async fn fetch(
        &self,
        previous: Option<Arc<TokenResponse>>,
        one_try: bool,
        defer_password: bool,
    ) -> Result<Option<(GrantKind, TokenResponse)>, AuthError> {
        let mut refresh_refused = false;
        let mut attempt = 1;
        loop {
            let error = match self
                .fetch_once(
                    previous.as_deref(),
                    &mut refresh_refused,
                    attempt,
                    defer_password,
                )
                .await
            {
                Ok(got) => return Ok(got),
                Err(e) => e,
            };
            if !error.is_transient() || one_try || attempt > self.config.retries {
                return Err(error);
            }
            let Some(delay) = self.backoff(attempt - 1, &error) else {
                return Err(error);
            };
            self.emit(ManagerEvent::Retry {
                attempt,
                delay,
                error: error.clone(),
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One try: the refresh grant while the refresh token lives, else the password grant.
    async fn fetch_once(
        &self,
        previous: Option<&TokenResponse>,
        refresh_refused: &mut bool,
        attempt: u32,
        defer_password: bool,
    ) -> Result<Option<(GrantKind, TokenResponse)>, AuthError> {
        let refreshable = previous
            .filter(|_| !*refresh_refused)
            .and_then(|p| Self::refreshable(Some(p), &self.lock()));
        if let Some(previous) = refreshable {
            let grant = Grant::RefreshToken {
                refresh_token: Secret::new(previous.refresh_token().unwrap_or_default().into()),
            };
            self.emit(ManagerEvent::Request {
                grant: GrantKind::RefreshToken,
                attempt,
            });
            match request_token(&grant, &self.config.request).await {
                Ok(mut token) => {
                    token.inherit_refresh_token(previous);
                    return Ok(Some((GrantKind::RefreshToken, token)));
                }
                // Revoked or expired: log in again with the password, if allowed.
                Err(error) if error.is_refusal() => {
                    self.emit(ManagerEvent::Refused {
                        grant: GrantKind::RefreshToken,
                        error: error.clone(),
                    });
                    *refresh_refused = true;
                    self.lock().refused_refresh = previous.refresh_token().map(str::to_owned);
                    if defer_password {
                        return Ok(None);
                    }
                    if let Some(cooling) = self.cooling_down(&self.lock(), SystemTime::now()) {
                        return Err(cooling);
                    }
                    self.emit(ManagerEvent::Fallback { error });
                }
                // "Not now" (429, 5xx, network): never a reason to send the password.
                Err(error) => return Err(error),
            }
        }
        let grant = Grant::Password {
            username: self.config.username.clone(),
            password: self.config.password.clone(),
        };
        self.emit(ManagerEvent::Request {
            grant: GrantKind::Password,
            attempt,
        });
        match request_token(&grant, &self.config.request).await {
            Ok(token) => Ok(Some((GrantKind::Password, token))),
            Err(error) => {
                if error.is_refusal() {
                    let until = SystemTime::now() + self.config.auth_failure_cooldown;
                    if !self.config.auth_failure_cooldown.is_zero() {
                        self.lock().cooldown = Some((until, error.clone()));
                    }
                    self.emit(ManagerEvent::Refused {
                        grant: GrantKind::Password,
                        error: error.clone(),
                    });
                    if !self.config.auth_failure_cooldown.is_zero() {
                        self.emit(ManagerEvent::Cooldown { until });
                    }
                }
                Err(error)
            }
        }
    }

    /// Exponential back-off with jitter, or the server's `Retry-After` when it is longer.
    /// None when the server asks for a longer wait than we are willing to hold a caller.
    fn backoff(&self, attempt: u32, error: &AuthError) -> Option<Duration> {
        let jittered = self.retry_backoff(attempt);
        match error.retry_after() {
            Some(wait) if wait > MAX_RETRY_DELAY => None,
            Some(wait) => Some(jittered.max(wait)),
            None => Some(jittered),
        }
    }

    /// With `autoRefresh`, a timer that refreshes the token of `generation` ahead of its
    /// expiry, and tries again after a failure. It holds the manager weakly, stops when the
    /// manager closes, and stands down once a newer token has its own timer. It runs on the
    /// addon's runtime, so it never keeps Node's event loop alive.
    fn schedule_auto_refresh(&self, generation: u64) {
        if !self.config.auto_refresh {
            return;
        }
        let me = self.me.clone();
        let closed = self.closed.clone();
        let _ = runtime::spawn(async move {
            let current = || me.upgrade().filter(|m| m.lock().generation == generation);
            loop {
                let Some(due) = current().and_then(|m| m.refresh_due()) else {
                    return;
                };
                tokio::select! {
                    _ = closed.cancelled() => return,
                    _ = tokio::time::sleep(due) => {}
                }
                let Some(m) = current() else { return };
                let failure = match m.subscribe() {
                    Ok(ticket) => {
                        drop(m);
                        ticket.settled().await.err()
                    }
                    Err(e) => Some(e),
                };
                // A new token brings its own timer; after a failure (already reported
                // through the events) wait as the server or the back-off says.
                let Some(m) = current() else { return };
                let wait = failure
                    .and_then(|e| e.retry_after())
                    .or_else(|| {
                        let not_before = m.lock().refresh_not_before?;
                        not_before.duration_since(SystemTime::now()).ok()
                    })
                    .unwrap_or(m.config.retry_delay.max(Duration::from_secs(1)));
                drop(m);
                tokio::select! {
                    _ = closed.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// How long until the cached token enters its refresh margin (zero if it has).
    fn refresh_due(&self) -> Option<Duration> {
        let (_, life) = self.cached()?;
        let start = life.expires?.checked_sub(self.margin(&life))?;
        Some(
            start
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// The fleet's lock while its holder works. Dropped with the lock still in it (the
/// manager closed mid-fetch, so the work was cancelled), it releases the lock on its own,
/// so the next process does not wait out the lease.
struct Releasing {
    store: Arc<dyn store::Store>,
    lock: Option<Lock>,
    timeout: Duration,
}

impl Drop for Releasing {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let store = self.store.clone();
            let timeout = self.timeout;
            let _ = runtime::spawn(async move {
                let _ = tokio::time::timeout(timeout, store.unlock(lock)).await;
            });
        }
    }
}

/// A store operation within the store timeout; a failure or a timeout is the store's.
async fn bounded<T>(timeout: Duration, op: store::StoreFuture<'_, T>) -> Result<T, NotShared> {
    match tokio::time::timeout(timeout, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(NotShared::Store(e)),
        Err(_) => Err(NotShared::Store(StoreError(
            "the store did not answer in time".into(),
        ))),
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
    use base64::Engine;

    fn jwt(claims: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(claims))
    }

    fn now_secs() -> f64 {
        to_epoch_secs(SystemTime::now())
    }

    fn manager(retries: u32) -> Arc<TokenManager> {
        TokenManager::new(
            ManagerConfig {
                username: Secret::new("u".into()),
                password: Secret::new("p".into()),
                request: RequestOptions::default(),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                retries,
                retry_delay: Duration::from_millis(100),
                auth_failure_cooldown: DEFAULT_AUTH_FAILURE_COOLDOWN,
                call_timeout: DEFAULT_CALL_TIMEOUT,
                auto_refresh: false,
                store: None,
            },
            None,
            None,
        )
    }

    #[test]
    fn a_received_token_lives_its_stated_lifetime_whatever_the_clocks_say() {
        // The server's clock is two hours behind: its exp is already past by ours.
        let (iat, exp) = (now_secs() - 7200.0, now_secs() - 3600.0);
        let body = format!(
            r#"{{"access_token":"{}","expires_in":3599}}"#,
            jwt(&format!(r#"{{"iat":{iat},"exp":{exp}}}"#))
        );
        let token = TokenResponse::from_body(200, body.into_bytes()).unwrap();
        let life = TokenManager::life(&token, None);
        let left = life
            .expires
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left > Duration::from_secs(3590) && left <= Duration::from_secs(3599));
        assert_eq!(life.lifetime, Some(Duration::from_secs(3599)));
    }

    #[test]
    fn a_stored_token_is_corrected_by_the_measured_skew() {
        let exp = now_secs() - 1800.0; // past by our clock, half an hour
        let stored = format!(
            r#"{{"access_token":"{}"}}"#,
            jwt(&format!(r#"{{"exp":{exp}}}"#))
        );
        let token = TokenResponse::from_stored(stored).unwrap();
        assert!(TokenManager::life(&token, None).expires.unwrap() < SystemTime::now());
        // The server runs two hours behind: its exp is 90 minutes ahead of us.
        let corrected = TokenManager::life(&token, Some(-7200.0)).expires.unwrap();
        let left = corrected.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(5300) && left <= Duration::from_secs(5400));
    }

    #[test]
    fn a_stored_token_issued_in_our_future_shows_our_clock_is_behind() {
        let stored = |iat: f64| {
            TokenResponse::from_stored(format!(
                r#"{{"access_token":"{}"}}"#,
                jwt(&format!(r#"{{"iat":{iat},"exp":{}}}"#, iat + 3600.0))
            ))
            .unwrap()
        };
        // Issued "10 minutes from now": this clock is at least that far behind.
        let ahead = TokenManager::skew_for_stored(None, None, &stored(now_secs() + 600.0)).unwrap();
        assert!((599.0..=601.0).contains(&ahead));
        // Issued in our past: says nothing (age and skew look alike); a measured skew stays.
        assert_eq!(
            TokenManager::skew_for_stored(None, None, &stored(now_secs() - 600.0)),
            None
        );
        assert_eq!(
            TokenManager::skew_for_stored(Some(-600.0), None, &stored(now_secs() - 30.0)),
            Some(-600.0)
        );
        // The store's clock 10 minutes ahead of ours: the same; behind ours, or absurdly
        // far ahead: nothing.
        let old = stored(now_secs() - 600.0);
        let by_store = TokenManager::skew_for_stored(None, Some(600.0), &old).unwrap();
        assert_eq!(by_store, 600.0);
        assert_eq!(
            TokenManager::skew_for_stored(None, Some(-600.0), &old),
            None
        );
        assert_eq!(TokenManager::skew_for_stored(None, Some(1e9), &old), None);
        // Never less than what this process measured.
        assert_eq!(
            TokenManager::skew_for_stored(Some(900.0), None, &stored(now_secs() + 600.0)),
            Some(900.0)
        );
    }

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        let m = manager(0);
        let life = |secs| Life {
            expires: None,
            lifetime: Some(Duration::from_secs(secs)),
        };
        assert_eq!(m.margin(&life(30)), Duration::from_secs(15));
        assert_eq!(m.margin(&life(86400)), DEFAULT_REFRESH_MARGIN);
        assert_eq!(
            m.margin(&Life {
                expires: None,
                lifetime: None
            }),
            DEFAULT_REFRESH_MARGIN
        );
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let m = manager(3);
        let net = AuthError::Network(super::super::error::NetworkError::new("x"));
        let d0 = m.backoff(0, &net).unwrap();
        let d3 = m.backoff(3, &net).unwrap();
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
        assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
        let busy = |secs| AuthError::Auth {
            status: 429,
            error: "too_many_requests".into(),
            error_description: None,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(m.backoff(0, &busy(2)), Some(Duration::from_secs(2)));
        assert_eq!(m.backoff(0, &busy(3600)), None);
    }

    #[test]
    fn invalidate_with_a_stale_token_drops_only_the_current_one() {
        let stored = format!(
            r#"{{"access_token":"{}"}}"#,
            jwt(&format!(r#"{{"exp":{}}}"#, now_secs() + 3600.0))
        );
        let m = TokenManager::new(
            ManagerConfig {
                username: Secret::new("u".into()),
                password: Secret::new("p".into()),
                request: RequestOptions::default(),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                retries: 0,
                retry_delay: DEFAULT_RETRY_DELAY,
                auth_failure_cooldown: DEFAULT_AUTH_FAILURE_COOLDOWN,
                call_timeout: DEFAULT_CALL_TIMEOUT,
                auto_refresh: false,
                store: None,
            },
            Some(TokenResponse::from_stored(stored).unwrap()),
            None,
        );
        let current = m.cached().unwrap().0.access_token().to_owned();
        assert!(!m.invalidate(Some("another.token.entirely")));
        assert!(m.cached().is_some());
        assert!(m.invalidate(Some(&current)));
        assert!(m.cached().is_none());
    }
}
