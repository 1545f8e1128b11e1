//! The shapes JavaScript passes in and gets back, declared for `index.d.ts`: napi-rs turns
//! these structs and their doc comments into TypeScript interfaces. Nothing here converts
//! values (the binding reads arguments itself, own properties only); it is the contract.
//! What Rust cannot declare (index signatures, the error union) is in `src/types.d.ts`,
//! which `napi build` puts at the head of `index.d.ts`.
#![allow(dead_code)]

use napi::bindgen_prelude::{Either11, Unknown};
use napi_derive::napi;

/// Options of every call that asks the token endpoint. Each may be `undefined`, which
/// means its default.
///
/// @example
/// ```ts
/// const options: TokenRequestOptions = { timeoutMs: 10_000, signal: AbortSignal.timeout(15_000) }
/// await createAccessToken('me@example.com', password, options)
/// ```
#[napi(object, object_to_js = false)]
pub struct TokenRequestOptions {
    /// The token endpoint. Default `https://api.sonetel.com/SonetelAuth/beta/oauth/token`.
    /// Plain `http:` is refused unless the host is loopback (`localhost`, `127.0.0.0/8`, `::1`).
    #[napi(ts_type = "string | undefined")]
    pub token_url: Option<String>,
    /// One deadline, in milliseconds, for the whole request: connect, send and receive.
    /// Default 30000. Must be above 0 and at most 2147483647.
    #[napi(ts_type = "number | undefined")]
    pub timeout_ms: Option<f64>,
    /// Ask for a refresh token too (`refresh=yes`). Default `true`.
    #[napi(ts_type = "boolean | undefined")]
    pub refresh: Option<bool>,
    /// Extra PEM root certificate(s) to trust besides the built-in Mozilla roots, for
    /// private test servers and corporate TLS inspection. Adds trust, never removes it. A
    /// self-signed server certificate given here is accepted for the server presenting it.
    #[napi(ts_type = "string | Uint8Array | Array<string | Uint8Array> | undefined")]
    pub ca: Option<Unknown<'static>>,
    /// Send `https:` requests through this `http://` or `https://` proxy. Without it, the
    /// `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` environment variables apply. A plain-http
    /// loopback URL never goes through a proxy (it would see the password).
    #[napi(ts_type = "string | undefined")]
    pub proxy: Option<String>,
    /// Cancels the request; the promise rejects with an `AbortError` (`code` `ABORT_ERR`).
    #[napi(ts_type = "AbortSignal | undefined")]
    pub signal: Option<Unknown<'static>>,
}

/// The claims of a Sonetel JWT, as `decodeAccessToken` returns them. Every claim in the
/// token is present; these are the ones Sonetel uses.
///
/// @example
/// ```ts
/// const claims: TokenClaims = decodeAccessToken(token.access_token)
/// const secondsLeft = (claims.exp ?? 0) - Date.now() / 1000
/// ```
#[napi(object, object_from_js = false)]
pub struct TokenClaims {
    /// Expiry, in seconds since 1970-01-01 UTC.
    pub exp: Option<f64>,
    /// Issue time, in seconds since 1970-01-01 UTC.
    pub iat: Option<f64>,
    /// The user the token acts for.
    #[napi(js_name = "user_id", ts_type = "string | number")]
    pub user_id: Option<String>,
    /// The Sonetel account id.
    #[napi(js_name = "acc_id", ts_type = "string | number")]
    pub acc_id: Option<String>,
    /// The granted scope.
    #[napi(ts_type = "string | string[]")]
    pub scope: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Audience.
    #[napi(ts_type = "string | string[]")]
    pub aud: Option<String>,
    /// Token id.
    pub jti: Option<String>,
    /// The OAuth client the token was issued to (`sonetel-api`).
    #[napi(js_name = "client_id")]
    pub client_id: Option<String>,
}

/// Options of `TokenManager` calls.
///
/// @example
/// ```ts
/// const accessToken = await manager.getAccessToken({ signal: AbortSignal.timeout(5_000) })
/// ```
#[napi(object, object_to_js = false)]
pub struct CallOptions {
    /// Stops waiting; the promise rejects with an `AbortError`. A token request already
    /// shared with other callers goes on for them.
    #[napi(ts_type = "AbortSignal | undefined")]
    pub signal: Option<Unknown<'static>>,
}

/// Options of `new TokenManager(options)`: the credentials, every `TokenRequestOptions`
/// field (but `signal`), and how the manager caches, retries and reports. A name that is
/// not listed here is an error.
///
/// @example
/// ```ts
/// const options: TokenManagerOptions = {
///   username: 'me@example.com',
///   password: process.env['SONETEL_PASSWORD'] ?? '',
///   refreshMarginMs: 5 * 60_000,
///   onToken: async (token) => { await redis.set('sonetel-token', JSON.stringify(token)) },
/// }
/// const manager = new TokenManager(options)
/// ```
#[napi(object, object_to_js = false)]
pub struct TokenManagerOptions {
    /// The Sonetel account e-mail.
    pub username: String,
    /// The password. A `Buffer` (any `Uint8Array`) lets the app wipe its own copy after
    /// the constructor.
    #[napi(ts_type = "string | Uint8Array")]
    pub password: Unknown<'static>,
    /// See `TokenRequestOptions.tokenUrl`.
    #[napi(ts_type = "string | undefined")]
    pub token_url: Option<String>,
    /// See `TokenRequestOptions.timeoutMs`; applies to each attempt.
    #[napi(ts_type = "number | undefined")]
    pub timeout_ms: Option<f64>,
    /// See `TokenRequestOptions.refresh`. Default `true`.
    #[napi(ts_type = "boolean | undefined")]
    pub refresh: Option<bool>,
    /// See `TokenRequestOptions.ca`.
    #[napi(ts_type = "string | Uint8Array | Array<string | Uint8Array> | undefined")]
    pub ca: Option<Unknown<'static>>,
    /// See `TokenRequestOptions.proxy`.
    #[napi(ts_type = "string | undefined")]
    pub proxy: Option<String>,
    /// Get a new token once the cached one has less than this to live, in ms, but never
    /// earlier than half-way through its lifetime. Default 60000.
    #[napi(ts_type = "number | undefined")]
    pub refresh_margin_ms: Option<f64>,
    /// Retries of transient failures (network, timeout, HTTP 408, 429 and 5xx, whatever
    /// their body says), 0 to 10. Default 2. A refused password is never retried.
    #[napi(ts_type = "number | undefined")]
    pub retries: Option<u32>,
    /// First back-off delay in ms, doubled on each retry, with jitter; a longer
    /// `Retry-After` from the server wins. Default 250.
    #[napi(ts_type = "number | undefined")]
    pub retry_delay_ms: Option<f64>,
    /// After Sonetel refuses the password, the manager does not send it again for this
    /// long (ms); calls meanwhile reject at once with the refusal. Default 300000 (5 min);
    /// 0 turns it off.
    #[napi(ts_type = "number | undefined")]
    pub auth_failure_cooldown_ms: Option<f64>,
    /// Refresh on a timer ahead of expiry, so the first call after a quiet spell does not
    /// wait. The timer never keeps the process alive. Default `false`.
    #[napi(ts_type = "boolean | undefined")]
    pub auto_refresh: Option<bool>,
    /// A token stored earlier (for example by `onToken`), used while its JWT `exp` says it
    /// is valid; its refresh token is used after that. `null` means none.
    #[napi(ts_type = "AccessToken | null | undefined")]
    pub token: Option<Unknown<'static>>,
    /// Called with each new token, so the app can store it. The calls that wait for the
    /// token do not wait for it; what it throws or rejects with is reported as an
    /// `onToken-failed` event.
    #[napi(ts_type = "((token: AccessToken) => void | Promise<void>) | undefined")]
    pub on_token: Option<Unknown<'static>>,
    /// Called with each event (requests, tokens, retries, fallbacks, refusals, cool-downs,
    /// stale tokens served, `onToken` failures). `NODE_DEBUG=sonetel-auth` prints the
    /// same events on stderr. No event holds a secret.
    #[napi(ts_type = "((event: TokenManagerEvent) => void) | undefined")]
    pub on_event: Option<Unknown<'static>>,
    /// The origin of Sonetel's REST API (no path) for `fetch` and `api`, the only place
    /// they send the token. Default `https://public-api.sonetel.com`; plain `http:` only to loopback.
    #[napi(ts_type = "string | undefined")]
    pub api_url: Option<String>,
    /// Share one token with every process that names the same store (see the README's
    /// "Many processes, one token"): `redis://[user:password@]host:port[/db]`,
    /// `rediss://…` (TLS, verified; `ca` and `NODE_EXTRA_CA_CERTS` add trust), or
    /// `file:///absolute/path` (processes on one machine). The store is an optimisation:
    /// when it fails, the manager fetches on its own and says so in an event.
    #[napi(ts_type = "string | undefined")]
    pub store: Option<String>,
    /// The key (Redis) the token is kept under; its lock is `<key>:lock`. Default: derived
    /// from the token URL and a hash of the user name (never the name itself).
    #[napi(ts_type = "string | undefined")]
    pub store_key: Option<String>,
    /// Encrypts what is stored (XChaCha20-Poly1305): 32 bytes, or a passphrase (a string,
    /// through Argon2id). Every process of the fleet needs the same. Without it the token
    /// is stored in clear.
    #[napi(ts_type = "string | Uint8Array | undefined")]
    pub store_secret: Option<Unknown<'static>>,
    /// How long one store operation may take before the manager carries on alone, in ms.
    /// Default 1000.
    #[napi(ts_type = "number | undefined")]
    pub store_timeout_ms: Option<f64>,
}

/// Options of `manager.api()`.
///
/// @example
/// ```ts
/// const options: ApiOptions = { method: 'GET', query: { page: 2 }, signal: AbortSignal.timeout(10_000) }
/// const page = await manager.api('/account/{acc_id}/phonenumbersubscription', options)
/// ```
#[napi(object, object_to_js = false)]
pub struct ApiOptions {
    /// The HTTP method: `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
    /// Default `GET`, or `POST` when `json` is given.
    #[napi(ts_type = "string | undefined")]
    pub method: Option<String>,
    /// Added to the query string; an array repeats the name.
    #[napi(
        ts_type = "Record<string, string | number | boolean | Array<string | number | boolean>> | undefined"
    )]
    pub query: Option<Unknown<'static>>,
    /// Sent as the JSON body (`content-type: application/json`).
    #[napi(ts_type = "unknown")]
    pub json: Option<Unknown<'static>>,
    /// Cancels the call; it rejects with an `AbortError`.
    #[napi(ts_type = "AbortSignal | undefined")]
    pub signal: Option<Unknown<'static>>,
}

/// A token request is about to be sent. `attempt` counts from 1.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'request') metrics.increment(`sonetel.${e.grant}`) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct RequestEvent {
    #[napi(js_name = "type", ts_type = "'request'")]
    pub kind: String,
    #[napi(ts_type = "'password' | 'refresh_token'")]
    pub grant: String,
    pub attempt: u32,
}

/// A new token arrived. `expiresAt` is in ms since 1970, `null` when nothing says.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'token') console.log('until', new Date(e.expiresAt ?? 0)) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct TokenEvent {
    #[napi(js_name = "type", ts_type = "'token'")]
    pub kind: String,
    #[napi(ts_type = "'password' | 'refresh_token'")]
    pub grant: String,
    #[napi(js_name = "expiresAt", ts_type = "number | null")]
    pub expires_at: f64,
}

/// Attempt `attempt` failed for a transient reason; the next follows in `delayMs`.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'retry') console.warn(`retry in ${e.delayMs} ms after ${e.code}`) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct RetryEvent {
    #[napi(js_name = "type", ts_type = "'retry'")]
    pub kind: String,
    pub attempt: u32,
    #[napi(js_name = "delayMs")]
    pub delay_ms: f64,
    #[napi(ts_type = "SonetelAuthErrorCode")]
    pub code: String,
    /// The HTTP status, when there was an answer.
    #[napi(ts_type = "number | undefined")]
    pub status: Option<u32>,
}

/// The refresh token was refused; the manager logs in with the password instead.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'fallback') console.warn('refresh token refused:', e.code) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct FallbackEvent {
    #[napi(js_name = "type", ts_type = "'fallback'")]
    pub kind: String,
    #[napi(ts_type = "'refresh_token'")]
    pub from: String,
    #[napi(ts_type = "'password'")]
    pub to: String,
    #[napi(ts_type = "SonetelAuthErrorCode")]
    pub code: String,
}

/// Sonetel refused a grant (`status`, and the OAuth `error`).
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'refused' && e.grant === 'password') console.error('password refused', e.status) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct RefusedEvent {
    #[napi(js_name = "type", ts_type = "'refused'")]
    pub kind: String,
    #[napi(ts_type = "'password' | 'refresh_token'")]
    pub grant: String,
    #[napi(ts_type = "number | null")]
    pub status: f64,
    #[napi(ts_type = "string | null")]
    pub error: String,
}

/// The password is not sent again before `untilMs` (ms since 1970).
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'cooldown') console.error('no login before', new Date(e.untilMs)) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct CooldownEvent {
    #[napi(js_name = "type", ts_type = "'cooldown'")]
    pub kind: String,
    #[napi(js_name = "untilMs")]
    pub until_ms: f64,
}

/// A refresh ahead of expiry failed for a transient reason (`code`); callers got the
/// still-valid token, and a later call tries again.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'stale-served') console.warn('serving the old token:', e.code) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct StaleServedEvent {
    #[napi(js_name = "type", ts_type = "'stale-served'")]
    pub kind: String,
    #[napi(ts_type = "SonetelAuthErrorCode")]
    pub code: String,
}

/// `onToken` threw or its promise rejected; `message` is the error's message, with any
/// secret of ours replaced by `[redacted]`.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'onToken-failed') console.error('could not store the token:', e.message) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct OnTokenFailedEvent {
    #[napi(js_name = "type", ts_type = "'onToken-failed'")]
    pub kind: String,
    pub message: String,
}

/// A token another process fetched was taken from the store.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'shared') console.log('shared until', e.expiresAt) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct SharedEvent {
    #[napi(js_name = "type", ts_type = "'shared'")]
    pub kind: String,
    #[napi(js_name = "expiresAt", ts_type = "number | null")]
    pub expires_at: f64,
}

/// The store failed (`message` says how, without secrets); this process fetches its own
/// tokens until it works again.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'store-unavailable') console.warn(e.message) } })
/// ```
#[napi(object, object_from_js = false)]
pub struct StoreUnavailableEvent {
    #[napi(js_name = "type", ts_type = "'store-unavailable'")]
    pub kind: String,
    pub message: String,
}

/// The store works again; the token is shared again.
///
/// @example
/// ```ts
/// new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'store-available') console.log('sharing again') } })
/// ```
#[napi(object, object_from_js = false)]
pub struct StoreAvailableEvent {
    #[napi(js_name = "type", ts_type = "'store-available'")]
    pub kind: String,
}

/// Everything `onEvent` receives, told apart by `type`.
///
/// @example
/// ```ts
/// const log = (e: TokenManagerEvent): void => { if (e.type === 'retry') console.warn(e.code, e.delayMs) }
/// ```
#[napi]
pub type TokenManagerEvent = Either11<
    RequestEvent,
    TokenEvent,
    RetryEvent,
    FallbackEvent,
    RefusedEvent,
    CooldownEvent,
    StaleServedEvent,
    OnTokenFailedEvent,
    SharedEvent,
    StoreUnavailableEvent,
    StoreAvailableEvent,
>;
