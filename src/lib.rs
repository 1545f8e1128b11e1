#![deny(clippy::all)]
#![deny(clippy::undocumented_unsafe_blocks)]
//! sonetel-auth: access tokens for the Sonetel REST API.
//!
//! `core` is plain safe Rust (HTTP, form encoding, tokens, errors, the token manager);
//! `binding` and the `#[napi]` items below map it to JavaScript.

mod binding;
pub mod core;

use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, FunctionRef, JsObjectValue, Unknown};
use napi::{Env, JsValue};
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
    /// Send requests through this `http://` or `https://` proxy. Without it, the
    /// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` environment variables apply.
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
    /// Get a new token once the cached one has less than this to live, in ms. Default 60000.
    pub refresh_margin_ms: Option<f64>,
    /// Retries of transient failures (network, timeout, HTTP 429 and 5xx), 0 to 10.
    /// Default 2. A refused password is never retried.
    pub retries: Option<u32>,
    /// First back-off delay in ms, doubled on each retry, with jitter; a longer
    /// `Retry-After` from the server wins. Default 250.
    pub retry_delay_ms: Option<f64>,
    /// A token stored earlier (for example by `onToken`), used while its JWT `exp` says it
    /// is valid; its refresh token is used after that.
    #[napi(ts_type = "AccessToken")]
    pub token: Option<Unknown<'static>>,
    /// Called with each new token, so the app can store it. Errors it throws are ignored.
    #[napi(ts_type = "(token: AccessToken) => void | Promise<void>")]
    pub on_token: Option<Unknown<'static>>,
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
#[napi(js_name = "__panicForTesting", ts_return_type = "Promise<never>")]
pub fn panic_for_testing<'e>(env: &'e Env, place: String) -> napi::Result<Unknown<'e>> {
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

/// A token that manages itself: cached while valid, refreshed ahead of expiry with the
/// refresh token (falling back to the password when that is refused), one request in
/// flight however many callers wait, and bounded retries of transient failures.
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
    on_token: Option<Rc<FunctionRef<Unknown<'static>, Unknown<'static>>>>,
}

#[napi]
impl TokenManager {
    /// Throws a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` or `ERR_INVALID_ARG_VALUE`
    /// for bad options. Makes no request until the first `getAccessToken()`.
    ///
    /// @example
    /// ```ts
    /// const manager = new TokenManager({ username: 'me@example.com', password })
    /// ```
    #[napi(constructor, ts_args_type = "options: TokenManagerOptions")]
    pub fn new(env: &Env, options: Unknown) -> napi::Result<Self> {
        let built = (|| {
            let a = args::manager_options(env, &options)?;
            let on_token = match a.on_token.as_ref().and_then(js::function) {
                Some(f) => Some(Rc::new(
                    f.create_ref()
                        .map_err(|_| js::internal(env, "could not keep onToken"))?,
                )),
                None => None,
            };
            let core = manager::TokenManager::new(a.config, a.restored);
            Instance::get(env)?.adopt(&core);
            Ok(TokenManager { core, on_token })
        })();
        built.map_err(|f: Failure| call::thrown(env, &f))
    }

    /// A valid access token: the cached one while it has more than `refreshMarginMs` to
    /// live, else a new one. Concurrent calls share one request.
    ///
    /// @example
    /// ```ts
    /// const accessToken = await manager.getAccessToken()
    /// ```
    #[napi(
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn get_access_token<'e>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        self.token_call(env, options, "")
    }

    /// `"Bearer <access token>"`, ready for an `Authorization` header.
    ///
    /// @example
    /// ```ts
    /// await fetch(url, { headers: { Authorization: await manager.authorizationHeader() } })
    /// ```
    #[napi(
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn authorization_header<'e>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
    ) -> napi::Result<Unknown<'e>> {
        self.token_call(env, options, "Bearer ")
    }

    /// Forgets the cached access token (for example after a Sonetel API answered 401);
    /// the next call gets a new one, with the refresh token while it is valid.
    ///
    /// @example
    /// ```ts
    /// if (response.status === 401) manager.invalidate()
    /// ```
    #[napi]
    pub fn invalidate(&self) {
        self.core.invalidate();
    }

    /// What `JSON.stringify(manager)` shows: no secrets, only whether a token is cached.
    ///
    /// @example
    /// ```ts
    /// JSON.stringify(manager) // '{"cached":true}'
    /// ```
    #[napi(js_name = "toJSON", ts_return_type = "{ cached: boolean }")]
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
    /// Hands each new token to `onToken`. Whatever it throws or rejects with is dropped:
    /// the app's callback must not break our promise chain nor leave an unhandled
    /// rejection behind.
    fn announce(
        env: &Env,
        core: &manager::TokenManager,
        on_token: Option<&FunctionRef<Unknown<'static>, Unknown<'static>>>,
    ) {
        let new_tokens = core.take_new_tokens();
        let Some(on_token) = on_token else { return };
        let (Ok(f), Ok(undefined)) = (on_token.borrow_back(env), js::undefined(env)) else {
            return;
        };
        for token in new_tokens {
            let Ok(value) = token_to_js(env, &token) else {
                continue;
            };
            let Some(result) = js::call(env, &f.to_unknown(), &undefined, &[value]) else {
                continue;
            };
            let Some(promise) = js::object(&result) else {
                continue;
            };
            let Ok(catch) = promise.get_named_property_unchecked::<Unknown>("catch") else {
                js::clear_exception(env);
                continue;
            };
            if let Ok(noop) = env.create_function_from_closure::<(), (), _>("ignore", |_| Ok(())) {
                js::call(env, &catch, &result, &[noop.to_unknown()]);
            }
        }
    }

    fn token_call<'e>(
        &self,
        env: &'e Env,
        options: Unknown<'e>,
        prefix: &'static str,
    ) -> napi::Result<Unknown<'e>> {
        let signal = match args::signal_only(env, &options) {
            Ok(s) => s,
            Err(e) => return rejected(env, e),
        };
        let ticket = match self.core.subscribe() {
            Ok(t) => t,
            Err(e) => return rejected(env, e.into()),
        };
        if let Ticket::Ready(token) = &ticket {
            Self::announce(env, &self.core, self.on_token.as_deref());
            return match js::js_string(env, &format!("{prefix}{}", token.access_token())) {
                Ok(text) => resolved(env, text),
                Err(f) => rejected(env, f),
            };
        }
        let core = Arc::clone(&self.core);
        let on_token = self.on_token.clone();
        call::spawn(env, signal, ticket.wait(), move |env, token| {
            Self::announce(env, &core, on_token.as_deref());
            js::js_string(env, &format!("{prefix}{}", token.access_token()))
        })
    }
}
