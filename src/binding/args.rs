//! Argument checks at the edge: JavaScript values in, checked core values out. Messages
//! name the argument and its type, never its value (it may be a password).

use std::time::Duration;

use napi::{sys, Env};

use super::js::{self, Raw};
use crate::core::client::{RequestOptions, MAX_TIMEOUT_MS};
use crate::core::error::AuthError;
use crate::core::manager::{
    ManagerConfig, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY,
};
use crate::core::secret::Secret;
use crate::core::token::{TokenResponse, MAX_TOKEN_LEN};

/// Longest user name or password we accept: far above any real one, far below abuse.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;
const MAX_RETRIES: f64 = 10.0;

fn wrong_type(env: sys::napi_env, value: Raw, what: &str, expected: &str) -> AuthError {
    AuthError::InvalidArgType(format!(
        "{what} must be {expected}, received {}",
        js::type_name(env, value)
    ))
}

fn check_text(text: String, what: &str) -> Result<Secret, AuthError> {
    let secret = Secret::new(text);
    if secret.expose().is_empty() {
        return Err(AuthError::InvalidArgValue(format!(
            "{what} must not be empty"
        )));
    }
    if secret.expose().contains('\0') {
        return Err(AuthError::InvalidArgValue(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(secret)
}

/// A non-empty string.
pub fn text(
    env: sys::napi_env,
    value: Raw,
    what: &str,
    max_len: usize,
) -> Result<Secret, AuthError> {
    if js::type_of(env, value) != sys::ValueType::napi_string {
        return Err(wrong_type(env, value, what, "a string"));
    }
    check_text(js::read_utf16(env, value, max_len, what)?, what)
}

pub fn username(env: sys::napi_env, value: Raw, what: &str) -> Result<Secret, AuthError> {
    text(env, value, what, MAX_CREDENTIAL_LEN)
}

pub fn refresh_token(env: sys::napi_env, value: Raw, what: &str) -> Result<Secret, AuthError> {
    text(env, value, what, MAX_TOKEN_LEN)
}

/// A string, or a `Buffer`/`Uint8Array` of UTF-8 that the app can wipe after the call.
pub fn password(env: sys::napi_env, value: Raw, what: &str) -> Result<Secret, AuthError> {
    if let Some(bytes) = js::bytes_of(env, value) {
        if bytes.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::InvalidArgValue(format!(
                "{what} is longer than {MAX_CREDENTIAL_LEN} bytes"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            AuthError::InvalidArgValue(format!("{what} is not valid UTF-8"))
        })?;
        return check_text(text, what);
    }
    if js::type_of(env, value) != sys::ValueType::napi_string {
        return Err(wrong_type(env, value, what, "a string or a Buffer"));
    }
    text(env, value, what, MAX_CREDENTIAL_LEN)
}

/// `undefined`/`null` as None, a plain object as Some, anything else a type error.
pub fn options_object(
    env: sys::napi_env,
    value: Raw,
    what: &str,
) -> Result<Option<Raw>, AuthError> {
    match js::type_of(env, value) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
        sys::ValueType::napi_object => {
            let mut is_array = false;
            unsafe { sys::napi_is_array(env, value, &mut is_array) };
            if is_array {
                return Err(AuthError::InvalidArgType(format!(
                    "{what} must be an object, received an array"
                )));
            }
            Ok(Some(value))
        }
        _ => Err(wrong_type(env, value, what, "an object")),
    }
}

/// `object[name]`, or None when it is `undefined`.
fn field(
    env: sys::napi_env,
    object: Raw,
    name: &str,
    what: &str,
) -> Result<Option<Raw>, AuthError> {
    let value = js::get_property(env, object, name, what)?;
    Ok((!js::is_undefined(env, value)).then_some(value))
}

fn typed_field(
    env: sys::napi_env,
    object: Raw,
    name: &str,
    what: &str,
    kind: sys::napi_valuetype,
    expected: &str,
) -> Result<Option<Raw>, AuthError> {
    match field(env, object, name, what)? {
        Some(v) if js::type_of(env, v) == kind => Ok(Some(v)),
        Some(v) => Err(wrong_type(env, v, &format!("{what}.{name}"), expected)),
        None => Ok(None),
    }
}

fn number_field(
    env: sys::napi_env,
    object: Raw,
    name: &str,
    what: &str,
) -> Result<Option<f64>, AuthError> {
    Ok(typed_field(
        env,
        object,
        name,
        what,
        sys::ValueType::napi_number,
        "a number",
    )?
    .map(|v| js::get_f64(env, v)))
}

fn string_field(
    env: sys::napi_env,
    object: Raw,
    name: &str,
    what: &str,
) -> Result<Option<String>, AuthError> {
    let path = format!("{what}.{name}");
    typed_field(
        env,
        object,
        name,
        what,
        sys::ValueType::napi_string,
        "a string",
    )?
    .map(|v| js::read_utf8(env, v, 16 * 1024, &path))
    .transpose()
}

/// Milliseconds as a `Duration`: finite, at least zero, at most what a Node timer takes.
fn millis(ms: f64, path: &str) -> Result<Duration, AuthError> {
    if !ms.is_finite() || !(0.0..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(AuthError::InvalidArgValue(format!(
            "{path} must be a number of milliseconds from 0 to {MAX_TIMEOUT_MS}"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// The options every request-making call takes, and its `AbortSignal`, if any.
pub struct CallOptions {
    pub request: RequestOptions,
    pub signal: Option<Raw>,
}

/// Reads `TokenRequestOptions` from `object` (already known to be an object or absent).
pub fn request_options(
    env: sys::napi_env,
    object: Option<Raw>,
    what: &str,
) -> Result<CallOptions, AuthError> {
    let mut request = RequestOptions::default();
    let Some(object) = object else {
        return Ok(CallOptions {
            request,
            signal: None,
        });
    };
    if let Some(url) = string_field(env, object, "tokenUrl", what)? {
        request.set_token_url(&url)?;
    }
    if let Some(ms) = number_field(env, object, "timeoutMs", what)? {
        request.set_timeout_ms(ms)?;
    }
    if let Some(v) = typed_field(
        env,
        object,
        "refresh",
        what,
        sys::ValueType::napi_boolean,
        "a boolean",
    )? {
        request.refresh = js::get_bool(env, v);
    }
    if let Some(ca) = field(env, object, "ca", what)? {
        ca_option(env, ca, &mut request, &format!("{what}.ca"))?;
    }
    if let Some(proxy) = string_field(env, object, "proxy", what)? {
        request.set_proxy(&proxy)?;
    }
    let signal = signal_field(env, object, what)?;
    Ok(CallOptions { request, signal })
}

/// The `options` argument of `createAccessToken` and `refreshAccessToken`.
pub fn call_options(env: sys::napi_env, value: Raw) -> Result<CallOptions, AuthError> {
    let object = options_object(env, value, "options")?;
    request_options(env, object, "options")
}

/// `ca`: a PEM string or Buffer, or an array of them.
fn ca_option(
    env: sys::napi_env,
    value: Raw,
    request: &mut RequestOptions,
    path: &str,
) -> Result<(), AuthError> {
    let mut is_array = false;
    unsafe { sys::napi_is_array(env, value, &mut is_array) };
    if !is_array {
        return ca_one(env, value, request, path);
    }
    let mut len = 0u32;
    unsafe { sys::napi_get_array_length(env, value, &mut len) };
    if len > 1000 {
        return Err(AuthError::InvalidArgValue(format!(
            "{path} lists more than 1000 certificates"
        )));
    }
    for i in 0..len {
        let mut item = std::ptr::null_mut();
        if unsafe { sys::napi_get_element(env, value, i, &mut item) } != sys::Status::napi_ok {
            js::clear_exception(env);
            return Err(AuthError::InvalidArgValue(format!(
                "{path}[{i}] could not be read"
            )));
        }
        ca_one(env, item, request, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

fn ca_one(
    env: sys::napi_env,
    value: Raw,
    request: &mut RequestOptions,
    path: &str,
) -> Result<(), AuthError> {
    let pem = match js::bytes_of(env, value) {
        Some(bytes) => bytes,
        None if js::type_of(env, value) == sys::ValueType::napi_string => {
            js::read_utf8(env, value, 1024 * 1024, path)?.into_bytes()
        }
        None => return Err(wrong_type(env, value, path, "a PEM string or Buffer")),
    };
    request.add_ca_pem(&pem)
}

/// `signal`: anything shaped like an `AbortSignal`.
fn signal_field(env: sys::napi_env, object: Raw, what: &str) -> Result<Option<Raw>, AuthError> {
    let Some(signal) = field(env, object, "signal", what)? else {
        return Ok(None);
    };
    let path = format!("{what}.signal");
    let shaped = js::type_of(env, signal) == sys::ValueType::napi_object
        && js::type_of(env, js::get_property(env, signal, "aborted", &path)?)
            == sys::ValueType::napi_boolean
        && js::type_of(
            env,
            js::get_property(env, signal, "addEventListener", &path)?,
        ) == sys::ValueType::napi_function;
    if !shaped {
        return Err(wrong_type(env, signal, &path, "an AbortSignal"));
    }
    Ok(Some(signal))
}

/// The second argument of `getAccessToken` and `authorizationHeader`: `{ signal }`.
pub fn signal_only(env: sys::napi_env, value: Raw) -> Result<Option<Raw>, AuthError> {
    match options_object(env, value, "options")? {
        Some(object) => signal_field(env, object, "options"),
        None => Ok(None),
    }
}

/// What `new TokenManager(options)` needs.
pub struct ManagerArgs {
    pub config: ManagerConfig,
    pub restored: Option<TokenResponse>,
    pub on_token: Option<Raw>,
}

pub fn manager_options(env: &Env, value: Raw) -> Result<ManagerArgs, AuthError> {
    let raw = env.raw();
    let what = "options";
    let Some(object) = options_object(raw, value, what)? else {
        return Err(wrong_type(
            raw,
            value,
            what,
            "an object with username and password",
        ));
    };
    let username = username(
        raw,
        js::get_property(raw, object, "username", what)?,
        "options.username",
    )?;
    let password = password(
        raw,
        js::get_property(raw, object, "password", what)?,
        "options.password",
    )?;
    let CallOptions { request, .. } = request_options(raw, Some(object), what)?;
    let refresh_margin = match number_field(raw, object, "refreshMarginMs", what)? {
        Some(ms) => millis(ms, "options.refreshMarginMs")?,
        None => DEFAULT_REFRESH_MARGIN,
    };
    let retries = match number_field(raw, object, "retries", what)? {
        Some(n) if n.fract() == 0.0 && (0.0..=MAX_RETRIES).contains(&n) => n as u32,
        Some(_) => {
            return Err(AuthError::InvalidArgValue(format!(
                "options.retries must be a whole number from 0 to {MAX_RETRIES}"
            )))
        }
        None => DEFAULT_RETRIES,
    };
    let retry_delay = match number_field(raw, object, "retryDelayMs", what)? {
        Some(ms) => millis(ms, "options.retryDelayMs")?,
        None => DEFAULT_RETRY_DELAY,
    };
    let restored = match field(raw, object, "token", what)? {
        Some(token) if js::type_of(raw, token) == sys::ValueType::napi_object => {
            let unknown = unsafe { napi::bindgen_prelude::Unknown::from_raw_unchecked(raw, token) };
            let json = env
                .from_js_value::<serde_json::Value, _>(unknown)
                .map_err(|_| {
                    js::clear_exception(raw);
                    AuthError::InvalidArgValue("options.token could not be read as JSON".into())
                })?;
            Some(TokenResponse::from_value(json).map_err(|_| {
                AuthError::InvalidArgValue(
                    "options.token must be an AccessToken with a non-empty string access_token"
                        .into(),
                )
            })?)
        }
        Some(token) => {
            return Err(wrong_type(
                raw,
                token,
                "options.token",
                "an AccessToken object",
            ))
        }
        None => None,
    };
    let on_token = typed_field(
        raw,
        object,
        "onToken",
        what,
        sys::ValueType::napi_function,
        "a function",
    )?;
    Ok(ManagerArgs {
        config: ManagerConfig {
            username,
            password,
            request,
            refresh_margin,
            retries,
            retry_delay,
        },
        restored,
        on_token,
    })
}
