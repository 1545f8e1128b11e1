#![deny(clippy::all)]
#![deny(clippy::undocumented_unsafe_blocks)]
//! sonetel-auth: access tokens for the Sonetel REST API.
//!
//! `core` is plain safe Rust (HTTP, form encoding, tokens, errors, the token manager);
//! `binding` and the `#[napi]` items below map it to JavaScript.

mod binding;
pub mod core;

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, Either8, JsObjectValue, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::core::grant::{request_token, Grant};
use crate::core::manager::{self, Ticket};
use crate::core::run::guard_sync;
use crate::core::token::{payload_json, TokenResponse};
use binding::args;
use binding::call::{self, rejected, resolved};
use binding::error::Failure;
use binding::instance::Instance;
use binding::js;

/// Options of every call that asks the token endpoint.
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
    pub token_url: Option<String>,
    /// One deadline, in milliseconds, for the whole request: connect, send and receive.
    /// Default 30000. Must be above 0 and at most 2147483647.
    pub timeout_ms: Option<f64>,
    /// Ask for a refresh token too (`refresh=yes`). Default `true`.
    pub refresh: Option<bool>,
    /// Extra PEM root certificate(s) to trust besides the built-in Mozilla roots, for
    /// private test servers and corporate TLS inspection. Adds trust, never removes it.
    #[napi(ts_type = "string | Buffer | Array<string | Buffer>")]
    pub ca: Option<Either<String, Buffer>>,
    /// Send `https:` requests through this `http://` or `https://` proxy. Without it, the
    /// `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` environment variables apply. A plain-http
    /// loopback URL never goes through a proxy (it would see the password).
    pub proxy: Option<String>,
    /// Cancels the request; the promise rejects with an `AbortError` (`code` `ABORT_ERR`).
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Unknown<'static>>,
}

/// What the token endpoint answered: every field exactly as the server sent it.
///
/// @example
/// ```ts
/// const token: AccessToken = await createAccessToken('me@example.com', password)
/// fetch(url, { headers: { Authorization: `Bearer ${token.access_token}` } })
/// ```
#[napi(object, object_from_js = false)]
pub struct AccessToken {
    /// The bearer token to send as `Authorization: Bearer <access_token>`. A JWT.
    #[napi(js_name = "access_token")]
    pub access_token: String,
    /// `"bearer"`.
    #[napi(js_name = "token_type")]
    pub token_type: String,
    /// Present when a refresh token was asked for (`refresh: true`, the default).
    #[napi(js_name = "refresh_token")]
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (about 86400).
    #[napi(js_name = "expires_in")]
    pub expires_in: Option<f64>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The token's unique id.
    pub jti: Option<String>,
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
/// const token = await manager.getAccessToken({ signal: AbortSignal.timeout(5_000) })
/// ```
#[napi(object, object_to_js = false)]
pub struct CallOptions {
    /// Stops waiting; the promise rejects with an `AbortError`. A token request already
    /// shared with other callers goes on for them.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Unknown<'static>>,
}

/// Options of `new TokenManager(options)`: the credentials, every `TokenRequestOptions`
/// field (but `signal`), and how the manager caches and retries.
///
/// @example
/// ```ts
/// const options: TokenManagerOptions = {
///   username: 'me@example.com',
///   password: process.env.SONETEL_PASSWORD!,
///   refreshMarginMs: 5 * 60_000,
///   onToken: (token) => redis.set('sonetel-token', JSON.stringify(token)),
/// }
/// const manager = new TokenManager(options)
/// ```
#[napi(object, object_to_js = false)]
pub struct TokenManagerOptions {
    /// The Sonetel account e-mail.
    pub username: String,
    /// The password. A `Buffer` lets the app wipe its own copy after the constructor.
    #[napi(ts_type = "string | Buffer")]
    pub password: Either<String, Buffer>,
    /// See `TokenRequestOptions.tokenUrl`.
    pub token_url: Option<String>,
    /// See `TokenRequestOptions.timeoutMs`; applies to each attempt.
    pub timeout_ms: Option<f64>,
    /// See `TokenRequestOptions.refresh`. Default `true`.
    pub refresh: Option<bool>,
    /// See `TokenRequestOptions.ca`.
    #[napi(ts_type = "string | Buffer | Array<string | Buffer>")]
    pub ca: Option<Either<String, Buffer>>,
    /// See `TokenRequestOptions.proxy`.
    pub proxy: Option<String>,
    /// Get a new token once the cached one has less than this to live, in ms, but never
    /// earlier than half-way through its lifetime. Default 60000.
    pub refresh_margin_ms: Option<f64>,
    /// Retries of transient failures (network, timeout, HTTP 408, 429 and 5xx, whatever
    /// their body says), 0 to 10. Default 2. A refused password is never retried.
    pub retries: Option<u32>,
    /// First back-off delay in ms, doubled on each retry, with jitter; a longer
    /// `Retry-After` from the server wins. Default 250.
    pub retry_delay_ms: Option<f64>,
    /// After Sonetel refuses the password, the manager does not send it again for this
    /// long (ms); calls meanwhile reject at once with the refusal. Default 300000 (5 min);
    /// 0 turns it off.
    pub auth_failure_cooldown_ms: Option<f64>,
    /// Refresh on a timer ahead of expiry, so the first call after a quiet spell does not
    /// wait. The timer never keeps the process alive. Default `false`.
    pub auto_refresh: Option<bool>,
    /// A token stored earlier (for example by `onToken`), used while its JWT `exp` says it
    /// is valid; its refresh token is used after that. `null` means none.
    #[napi(ts_type = "AccessToken | null")]
    pub token: Option<Unknown<'static>>,
    /// Called with each new token, so the app can store it. The calls that wait for the
    /// token do not wait for it; what it throws or rejects with is reported as an
    /// `onToken-failed` event.
    #[napi(ts_type = "(token: AccessToken) => void | Promise<void>")]
    pub on_token: Option<Unknown<'static>>,
    /// Called with each event (requests, tokens, retries, fallbacks, refusals, cool-downs,
    /// stale tokens served, `onToken` failures). `NODE_DEBUG=sonetel-auth` prints the
    /// same events on stderr. No event holds a secret.
    #[napi(ts_type = "(event: TokenManagerEvent) => void")]
    pub on_event: Option<Unknown<'static>>,
    /// The origin of Sonetel's REST API for `fetch` and `api`, the only place they send
    /// the token. Default `https://public-api.sonetel.com`; plain `http:` only to loopback.
    pub api_url: Option<String>,
}

/// Options of `manager.api()`.
///
/// @example
/// ```ts
/// const options: ApiOptions = { method: 'GET', query: { page: 2 }, signal: AbortSignal.timeout(10_000) }
/// ```
#[napi(object, object_to_js = false)]
pub struct ApiOptions {
    /// The HTTP method. Default `GET`, or `POST` when `json` is given.
    pub method: Option<String>,
    /// Added to the query string; an array repeats the name.
    #[napi(
        ts_type = "Record<string, string | number | boolean | Array<string | number | boolean>>"
    )]
    pub query: Option<Unknown<'static>>,
    /// Sent as the JSON body (`content-type: application/json`).
    #[napi(ts_type = "unknown")]
    pub json: Option<Unknown<'static>>,
    /// Cancels the call; it rejects with an `AbortError`.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Unknown<'static>>,
}

/// A token request is about to be sent. `attempt` counts from 1.
///
/// @example
/// ```ts
/// onEvent: (e) => { if (e.type === 'request') metrics.increment(`sonetel.${e.grant}`) }
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
/// onEvent: (e) => { if (e.type === 'token') console.log('token until', new Date(e.expiresAt ?? 0)) }
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
/// onEvent: (e) => { if (e.type === 'retry') console.warn(`retry in ${e.delayMs} ms after ${e.code}`) }
/// ```
#[napi(object, object_from_js = false)]
pub struct RetryEvent {
    #[napi(js_name = "type", ts_type = "'retry'")]
    pub kind: String,
    pub attempt: u32,
    #[napi(js_name = "delayMs")]
    pub delay_ms: f64,
    #[napi(
        ts_type = "'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_SONETEL_AUTH' | 'ERR_SONETEL_HTTP' | 'ERR_SONETEL_RESPONSE' | 'ERR_SONETEL_TIMEOUT' | 'ERR_SONETEL_NETWORK' | 'ERR_SONETEL_API' | 'ABORT_ERR' | 'ERR_SONETEL_INTERNAL'"
    )]
    pub code: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u32>,
}

/// The refresh token was refused; the manager logs in with the password instead.
///
/// @example
/// ```ts
/// onEvent: (e) => { if (e.type === 'fallback') console.warn('refresh token refused:', e.code) }
/// ```
#[napi(object, object_from_js = false)]
pub struct FallbackEvent {
    #[napi(js_name = "type", ts_type = "'fallback'")]
    pub kind: String,
    #[napi(ts_type = "'refresh_token'")]
    pub from: String,
    #[napi(ts_type = "'password'")]
    pub to: String,
    #[napi(
        ts_type = "'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_SONETEL_AUTH' | 'ERR_SONETEL_HTTP' | 'ERR_SONETEL_RESPONSE' | 'ERR_SONETEL_TIMEOUT' | 'ERR_SONETEL_NETWORK' | 'ERR_SONETEL_API' | 'ABORT_ERR' | 'ERR_SONETEL_INTERNAL'"
    )]
    pub code: String,
}

/// Sonetel refused a grant (`status`, and the OAuth `error`).
///
/// @example
/// ```ts
/// onEvent: (e) => { if (e.type === 'refused' && e.grant === 'password') alert('Sonetel password refused') }
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
/// onEvent: (e) => { if (e.type === 'cooldown') console.error('no login before', new Date(e.untilMs)) }
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
/// onEvent: (e) => { if (e.type === 'stale-served') console.warn('serving the old token:', e.code) }
/// ```
#[napi(object, object_from_js = false)]
pub struct StaleServedEvent {
    #[napi(js_name = "type", ts_type = "'stale-served'")]
    pub kind: String,
    #[napi(
        ts_type = "'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_SONETEL_AUTH' | 'ERR_SONETEL_HTTP' | 'ERR_SONETEL_RESPONSE' | 'ERR_SONETEL_TIMEOUT' | 'ERR_SONETEL_NETWORK' | 'ERR_SONETEL_API' | 'ABORT_ERR' | 'ERR_SONETEL_INTERNAL'"
    )]
    pub code: String,
}

/// `onToken` threw or its promise rejected; `message` is the error's message, with any
/// secret of ours replaced by `[redacted]`.
///
/// @example
/// ```ts
/// onEvent: (e) => { if (e.type === 'onToken-failed') console.error('could not store the token:', e.message) }
/// ```
#[napi(object, object_from_js = false)]
pub struct OnTokenFailedEvent {
    #[napi(js_name = "type", ts_type = "'onToken-failed'")]
    pub kind: String,
    pub message: String,
}

/// Everything `onEvent` receives, told apart by `type`.
///
/// @example
/// ```ts
/// const log = (e: TokenManagerEvent) => (e.type === 'retry' ? console.warn(e.code, e.delayMs) : undefined)
/// ```
#[napi]
pub type TokenManagerEvent = Either8<
    RequestEvent,
    TokenEvent,
    RetryEvent,
    FallbackEvent,
    RefusedEvent,
    CooldownEvent,
    StaleServedEvent,
    OnTokenFailedEvent,
>;

/// What `TokenManager.getToken()` resolves with: the token as the server sent it, and the
/// manager's view of it.
///
/// @example
/// ```ts
/// const { access_token, claims, expiresAt } = await manager.getToken()
/// ```
#[napi(object, object_from_js = false)]
pub struct ManagedToken {
    /// The bearer token. A JWT.
    #[napi(js_name = "access_token")]
    pub access_token: String,
    /// `"bearer"`.
    #[napi(js_name = "token_type")]
    pub token_type: String,
    /// The refresh token, when there is one.
    #[napi(js_name = "refresh_token")]
    pub refresh_token: Option<String>,
    /// When the manager considers the token expired, in ms since 1970, after correcting
    /// for clock skew; `null` when nothing says.
    #[napi(js_name = "expiresAt", ts_type = "number | null")]
    pub expires_at: f64,
    /// The access token's claims (`acc_id`, `user_id`, `exp`, …); `null` if it is not a JWT.
    #[napi(ts_type = "(TokenClaims & Record<string, unknown>) | null")]
    pub claims: Unknown<'static>,
}

/// The token as a JavaScript object: the server's body through `JSON.parse`, which
/// builds it faster than property-by-property conversion, keeps every field as sent, and
/// runs no setter of `Object.prototype`.
fn token_to_js<'e>(env: &'e Env, token: &TokenResponse) -> Result<Unknown<'e>, Failure> {
    Instance::get(env)?
        .json_parse(env, token.json())
        .ok_or_else(|| js::internal(env, "JSON.parse failed"))
}

/// Logs in with a Sonetel account's e-mail and password (the `password` grant).
///
/// Same call as Sonetel's sample, `createAccessToken(username, password)`, but every
/// failure rejects with an `Error` that has a stable `code` (see the README), and the
/// whole request has a deadline.
///
/// @example
/// ```js
/// const { createAccessToken } = require('sonetel-auth')
/// const token = await createAccessToken('me@example.com', process.env.SONETEL_PASSWORD)
/// console.log(token.access_token, token.expires_in)
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "username: string, password: string | Buffer, options?: TokenRequestOptions",
    ts_return_type = "Promise<AccessToken & Record<string, unknown>>"
)]
pub fn create_access_token<'e>(
    env: &'e Env,
    username: Unknown<'e>,
    password: Unknown<'e>,
    options: Unknown<'e>,
) -> napi::Result<Unknown<'e>> {
    let checked = (|| {
        let username = args::username(&username, "username")?;
        let password = args::password(&password, "password")?;
        let options = args::call_options(env, &options)?;
        Ok((Grant::Password { username, password }, options))
    })();
    token_request(env, checked)
}

/// Exchanges a refresh token for a new access token (the `refresh_token` grant).
/// Same options, errors and resolved shape as `createAccessToken`. The refresh token
/// never appears in an error.
///
/// @example
/// ```js
/// const next = await refreshAccessToken(token.refresh_token)
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "refreshToken: string, options?: TokenRequestOptions",
    ts_return_type = "Promise<AccessToken & Record<string, unknown>>"
)]
pub fn refresh_access_token<'e>(
    env: &'e Env,
    refresh_token: Unknown<'e>,
    options: Unknown<'e>,
) -> napi::Result<Unknown<'e>> {
    let checked = (|| {
        let refresh_token = args::token(&refresh_token, "refreshToken")?;
        let options = args::call_options(env, &options)?;
        Ok((Grant::RefreshToken { refresh_token }, options))
    })();
    token_request(env, checked)
}

/// Sends a checked grant, or rejects with the argument error that stopped it.
fn token_request<'e>(
    env: &'e Env,
    checked: Result<(Grant, args::CallOptions<'e>), Failure>,
) -> napi::Result<Unknown<'e>> {
    let (grant, options) = match checked {
        Ok(c) => c,
        Err(e) => return rejected(env, e),
    };
    let request = options.request;
    call::spawn(
        env,
        options.signal,
        async move { request_token(&grant, &request).await },
        |env, token| token_to_js(env, &token),
    )
}

/// Decodes the claims of an access (or refresh) token. It does NOT verify the signature:
/// use it to read `exp`, `user_id` or `acc_id` of a token you got from Sonetel, never to
/// trust a token from someone else. The claims are what `JSON.parse` makes of the payload.
///
/// Throws a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` for a non-string and
/// `ERR_INVALID_ARG_VALUE` for a string that is not a JWT.
///
/// @example
/// ```js
/// const { exp, acc_id } = decodeAccessToken(token.access_token)
/// console.log('expires', new Date(exp * 1000))
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "token: string",
    ts_return_type = "TokenClaims & Record<string, unknown>"
)]
pub fn decode_access_token<'e>(env: &'e Env, token: Unknown<'e>) -> napi::Result<Unknown<'e>> {
    let payload = guard_sync(|| {
        Ok(args::token(&token, "token")
            .and_then(|t| payload_json(t.expose()).map_err(|e| Failure::ArgValue(e.to_string()))))
    })
    .unwrap_or_else(|e| Err(Failure::Core(e)));
    let claims = payload.and_then(|json| {
        Instance::get(env)?
            .json_parse(env, &json)
            .ok_or_else(|| js::internal(env, "JSON.parse failed"))
    });
    claims.map_err(|f| call::thrown(env, &f))
}

/// @internal Test hook: panics inside the addon ('sync' or 'async') to show that a panic
/// rejects with `ERR_SONETEL_INTERNAL` instead of aborting the process.
///
/// @example
/// ```ts
/// await __panicForTesting('async').catch((e) => e.code) // 'ERR_SONETEL_INTERNAL'
/// ```
#[napi(js_name = "__panicForTesting", skip_typescript, catch_unwind)]
pub fn panic_for_testing<'e>(env: &'e Env, place: Unknown<'e>) -> napi::Result<Unknown<'e>> {
    let place = match js::string(&place).map(|s| js::read_utf8(s, 16, "place")) {
        Some(Ok(place)) => place,
        _ => {
            return rejected(
                env,
                Failure::ArgType("place must be 'sync' or 'async'".into()),
            )
        }
    };
    if place == "sync" {
        let e = guard_sync::<()>(|| panic!("deliberate panic (sync)")).unwrap_err();
        return rejected(env, e.into());
    }
    call::spawn(
        env,
        None,
        async { panic!("deliberate panic (async)") },
        |_, ()| unreachable!(),
    )
}

/// A token that manages itself for a backend that runs for months: cached while valid,
/// refreshed ahead of expiry with the refresh token (falling back to the password when
/// that is refused), one request in flight however many callers wait, transient failures
/// (network, timeouts, 408, 429, 5xx) retried with back-off, a refused password not sent
/// again for `authFailureCooldownMs`, expiry that survives a skewed clock, and an event
/// for everything it does.
///
/// `util.inspect(manager)` and `JSON.stringify(manager)` show no secret.
///
/// @example
/// ```js
/// const manager = new TokenManager({ username, password, onToken: (t) => save(t) })
/// const res = await fetch(url, { headers: { Authorization: await manager.authorizationHeader() } })
/// ```
#[napi]
pub struct TokenManager {
    core: Arc<manager::TokenManager>,
    api_url: reqwest::Url,
}

#[napi]
impl TokenManager {
    /// Throws a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` or `ERR_INVALID_ARG_VALUE`
    /// for bad options. Makes no request until the first call (or, with `autoRefresh`,
    /// until a stored token nears its expiry).
    ///
    /// @example
    /// ```ts
    /// const manager = new TokenManager({ username: 'me@example.com', password })
    /// ```
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: TokenManagerOptions"
    )]
    pub fn new(env: &Env, options: Unknown) -> napi::Result<Self> {
        let built = (|| {
            let a = args::manager_options(env, &options)?;
            let password = a.config.password.clone();
            let listener = binding::events::listener(env, a.on_token, a.on_event, password)?;
            let core = manager::TokenManager::new(a.config, a.restored, listener);
            Instance::get(env)?.adopt(&core);
            Ok(TokenManager {
                core,
                api_url: a.api_url,
            })
        })();
        built.map_err(|f: Failure| call::thrown(env, &f))
    }

    /// A valid access token: the cached one while it has more than the refresh margin to
    /// live, else a new one. Concurrent calls share one request.
    ///
    /// @example
    /// ```ts
    /// const accessToken = await manager.getAccessToken()
    /// ```
    #[napi(
        catch_unwind,
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn get_access_token<'e>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        self.token_call(env, options, |env, _, token| {
            js::js_string(env, token.access_token())
        })
    }

    /// `"Bearer <access token>"`, ready for an `Authorization` header.
    ///
    /// @example
    /// ```ts
    /// await fetch(url, { headers: { Authorization: await manager.authorizationHeader() } })
    /// ```
    #[napi(
        catch_unwind,
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn authorization_header<'e>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        self.token_call(env, options, |env, _, token| {
            js::js_string(env, &format!("Bearer {}", token.access_token()))
        })
    }

    /// The whole current token: every field the server sent, plus `expiresAt` (when the
    /// manager considers it expired, in ms since 1970, after correcting for clock skew;
    /// `null` when nothing says) and `claims` (its decoded JWT claims, `null` for a token
    /// that is not a JWT). Same caching and sharing as `getAccessToken()`.
    ///
    /// @example
    /// ```ts
    /// const { access_token, claims } = await manager.getToken()
    /// const url = `https://public-api.sonetel.com/account/${claims?.acc_id}`
    /// ```
    #[napi(
        catch_unwind,
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<ManagedToken & Record<string, unknown>>"
    )]
    pub fn get_token<'e>(&self, env: &'e Env, options: Unknown<'e>) -> napi::Result<Unknown<'e>> {
        self.token_call(env, options, |env, core, token| {
            let instance = Instance::get(env)?;
            let parse = |text: &str| {
                instance
                    .json_parse(env, text)
                    .ok_or_else(|| js::internal(env, "JSON.parse failed"))
            };
            let value = parse(token.json())?;
            let mut object =
                js::object(&value).ok_or_else(|| js::internal(env, "not an object"))?;
            let life = core.life_of(token);
            let expires_at = match life.expires {
                Some(t) => format!("{}", (core::token::to_epoch_secs(t) * 1000.0).round()),
                None => "null".into(),
            };
            let claims = payload_json(token.access_token()).unwrap_or_else(|_| "null".into());
            let extra = parse(&format!(
                r#"{{"expiresAt":{expires_at},"claims":{claims}}}"#
            ))?;
            let extra = js::object(&extra).ok_or_else(|| js::internal(env, "not an object"))?;
            let get = |name: &str| {
                extra
                    .get_named_property_unchecked::<Unknown>(name)
                    .map_err(|_| js::internal(env, "could not read back"))
            };
            js::define(
                env,
                &mut object,
                &[("expiresAt", get("expiresAt")?), ("claims", get("claims")?)],
            )?;
            Ok(value)
        })
    }

    /// Forgets the cached access token, for when a Sonetel API answered 401. Pass the
    /// token that got the 401: it is dropped only while it is still the current one, so
    /// twenty requests that fail with the same stale token cause one new token request.
    /// Without an argument the cached token is always dropped. The next call gets a new
    /// one, with the refresh token while it is valid. Returns whether it was dropped.
    ///
    /// @example
    /// ```ts
    /// if (response.status === 401) manager.invalidate(accessToken)
    /// ```
    #[napi(catch_unwind, ts_args_type = "staleAccessToken?: string")]
    pub fn invalidate(&self, env: &Env, stale_access_token: Unknown) -> napi::Result<bool> {
        if js::is_nullish(&stale_access_token) {
            return Ok(self.core.invalidate(None));
        }
        let stale = args::token(&stale_access_token, "staleAccessToken")
            .map_err(|f| call::thrown(env, &f))?;
        Ok(self.core.invalidate(Some(stale.expose())))
    }

    /// `fetch` for Sonetel's REST API, with the manager's token: the same arguments and
    /// result as the global `fetch` (a standard `Response`). A path is resolved against
    /// `apiUrl`; a URL on any other origin (or with a user name or password) rejects with
    /// `ERR_INVALID_ARG_VALUE`, and a redirect to another origin is not followed: the
    /// token goes nowhere else. On a 401 it invalidates that token and retries once with a
    /// new one, when the body can be sent again (not a stream). The manager's `timeoutMs`,
    /// `proxy` and `ca` apply; so does `init.signal`. Bodies are read whole, up to 16 MiB.
    ///
    /// @example
    /// ```ts
    /// const res = await manager.fetch('/make-calls/call/call-back', {
    ///   method: 'POST',
    ///   headers: { 'content-type': 'application/json' },
    ///   body: JSON.stringify({ call1: '+46701234567', call2: '+46812345678' }),
    /// })
    /// ```
    #[napi(
        catch_unwind,
        ts_args_type = "input: string | URL | Request, init?: RequestInit",
        ts_return_type = "Promise<Response>"
    )]
    pub fn fetch<'e>(
        &self,
        env: &'e Env,
        input: Unknown<'e>,
        init: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        binding::api::fetch(env, &self.core, &self.api_url, input, init)
    }

    /// Calls Sonetel's JSON API and resolves with the `response` member of a
    /// `{"status":"success"}` answer. `{acc_id}` and `{user_id}` in the path are filled
    /// from the token's claims. A `{"status":"failed"}` answer rejects with
    /// `ERR_SONETEL_API` (`status`, `apiCode`, `detail`), whatever its HTTP status; any
    /// other non-2xx answer with `ERR_SONETEL_HTTP`. `json` is sent as the body (and makes
    /// the method `POST` unless `method` says otherwise); `query` adds to the query string.
    ///
    /// @example
    /// ```ts
    /// const account = await manager.api<{ account_id: number }>('/account/{acc_id}')
    /// const { session_id } = await manager.api<{ session_id: string }>('/make-calls/call/call-back', {
    ///   json: { call1: '+46701234567', call2: '+46812345678' },
    /// })
    /// ```
    #[napi(
        catch_unwind,
        ts_generic_types = "T = unknown",
        ts_args_type = "path: string, options?: ApiOptions",
        ts_return_type = "Promise<T>"
    )]
    pub fn api<'e>(
        &self,
        env: &'e Env,
        path: Unknown<'e>,
        options: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        binding::api::api(env, &self.core, &self.api_url, path, options)
    }

    /// What `JSON.stringify(manager)` shows: no secrets, only whether a token is cached.
    ///
    /// @example
    /// ```ts
    /// JSON.stringify(manager) // '{"cached":true}'
    /// ```
    #[napi(
        js_name = "toJSON",
        catch_unwind,
        ts_return_type = "{ cached: boolean }"
    )]
    pub fn to_json<'e>(&self, env: &'e Env) -> napi::Result<Unknown<'e>> {
        let text = format!(r#"{{"cached":{}}}"#, self.core.cached().is_some());
        Instance::get(env)
            .and_then(|i| {
                i.json_parse(env, &text)
                    .ok_or_else(|| js::internal(env, "JSON.parse failed"))
            })
            .map_err(|f| call::thrown(env, &f))
    }
}

impl TokenManager {
    /// Resolves with `to_js` of a token to use: now when the cached one will do, else when
    /// the fetch under way (or started here) brings one.
    fn token_call<'e, J>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
        to_js: J,
    ) -> napi::Result<Unknown<'e>>
    where
        J: for<'a> Fn(
                &'a Env,
                &manager::TokenManager,
                &TokenResponse,
            ) -> Result<Unknown<'a>, Failure>
            + 'static,
    {
        let signal = match args::signal_only(env, &options) {
            Ok(s) => s,
            Err(e) => return rejected(env, e),
        };
        let ticket = match self.core.subscribe() {
            Ok(t) => t,
            Err(e) => return rejected(env, e.into()),
        };
        if let Ticket::Ready(token) = &ticket {
            return match to_js(env, &self.core, token) {
                Ok(value) => resolved(env, value),
                Err(f) => rejected(env, f),
            };
        }
        let core = Arc::clone(&self.core);
        call::spawn(env, signal, ticket.wait(), move |env, token| {
            to_js(env, &core, &token)
        })
    }
}
