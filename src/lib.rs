#![deny(clippy::all)]
#![deny(clippy::undocumented_unsafe_blocks)]
//! sonetel-auth: access tokens for the Sonetel REST API.
//!
//! `core` is plain safe Rust (HTTP, form encoding, tokens, errors, the token manager);
//! `binding` and the `#[napi]` items below map it to JavaScript.

mod binding;
pub mod core;
mod types;

use std::sync::Arc;

use napi::bindgen_prelude::{JsObjectValue, Unknown};
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
/// ```ts
/// const token = await createAccessToken('me@example.com', process.env['SONETEL_PASSWORD'] ?? '')
/// console.log(token.access_token, token.expires_in)
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "username: string, password: string | Uint8Array, options?: TokenRequestOptions",
    ts_return_type = "Promise<AccessToken>"
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
/// ```ts
/// if (token.refresh_token !== undefined) {
///   const next = await refreshAccessToken(token.refresh_token)
///   console.log(next.access_token)
/// }
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "refreshToken: string, options?: TokenRequestOptions",
    ts_return_type = "Promise<AccessToken>"
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
/// ```ts
/// const { exp, acc_id } = decodeAccessToken(token.access_token)
/// console.log('account', acc_id, 'expires', new Date((exp ?? 0) * 1000))
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

/// Tells whether `value` is one of this package's errors: an `Error` whose `code` is one
/// of ours and that has the properties its code promises (a numeric `status` and a string
/// `error` for `ERR_SONETEL_AUTH`, and so on). It checks what it says, so narrowing on it
/// is safe; an error with the same code and shape from elsewhere (Node's own `ABORT_ERR`)
/// passes too.
///
/// @example
/// ```ts
/// try {
///   await createAccessToken('me@example.com', password)
/// } catch (err) {
///   if (isSonetelAuthError(err) && err.code === 'ERR_SONETEL_AUTH') console.error(err.status, err.error)
///   else throw err
/// }
/// ```
#[napi(
    catch_unwind,
    ts_args_type = "value: unknown",
    ts_return_type = "value is SonetelAuthError"
)]
pub fn is_sonetel_auth_error(env: &Env, value: Unknown) -> bool {
    binding::error::is_ours(env, &value)
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
/// ```ts
/// const manager = new TokenManager({ username, password, onToken: (t) => save(t) })
/// const account = await manager.api('/account/{acc_id}')
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
    /// const accountUrl = `https://public-api.sonetel.com/account/${String(claims?.acc_id)}`
    /// console.log(accountUrl, access_token.length)
    /// ```
    #[napi(
        catch_unwind,
        ts_args_type = "options?: CallOptions",
        ts_return_type = "Promise<ManagedToken>"
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
    /// const accessToken = await manager.getAccessToken()
    /// const response = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } })
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
    /// console.log(account.account_id, session_id)
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
