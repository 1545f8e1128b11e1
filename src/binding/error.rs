//! The JavaScript face of every failure: one stable `code` per kind, the properties the
//! README's error table lists, and error objects built so that nothing an app (or an
//! attacker) put on `Object.prototype` or `Error.prototype` can stop them.

use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{sys, Env, JsValue, ValueType};

use super::js;
use crate::core::error::AuthError;

/// Everything a call can fail with: a bad argument, or a failure of the core.
#[derive(Debug, Clone)]
pub enum Failure {
    /// An argument or option has the wrong type.
    ArgType(String),
    /// An argument or option has a value we refuse.
    ArgValue(String),
    /// The request itself failed.
    Core(AuthError),
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    /// The stable `code` JavaScript sees.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::ArgType(_) => "ERR_INVALID_ARG_TYPE",
            Failure::ArgValue(_) => "ERR_INVALID_ARG_VALUE",
            Failure::Core(e) => match e {
                AuthError::Auth { .. } | AuthError::CoolingDown { .. } => "ERR_SONETEL_AUTH",
                AuthError::Http { .. } => "ERR_SONETEL_HTTP",
                AuthError::Response { .. } => "ERR_SONETEL_RESPONSE",
                AuthError::Api { .. } => "ERR_SONETEL_API",
                AuthError::Timeout { .. } => "ERR_SONETEL_TIMEOUT",
                AuthError::Network(_) => "ERR_SONETEL_NETWORK",
                AuthError::Aborted => "ABORT_ERR",
                AuthError::Config(_) => "ERR_INVALID_ARG_VALUE",
                AuthError::Internal(_) => "ERR_SONETEL_INTERNAL",
            },
        }
    }

    fn is_type_error(&self) -> bool {
        matches!(
            self,
            Failure::ArgType(_) | Failure::ArgValue(_) | Failure::Core(AuthError::Config(_))
        )
    }

    fn message(&self) -> String {
        match self {
            Failure::ArgType(m) | Failure::ArgValue(m) => m.clone(),
            Failure::Core(e @ AuthError::CoolingDown { .. }) => {
                format!("{e} (authFailureCooldownMs)")
            }
            Failure::Core(e) => e.to_string(),
        }
    }

    /// The error object: an `Error` (a `TypeError` for argument errors) with `code` and
    /// the properties of its kind. `abort_reason` becomes an `AbortError`'s `cause`.
    pub fn to_js<'e>(
        &self,
        env: &'e Env,
        abort_reason: Option<Unknown<'e>>,
    ) -> Result<Unknown<'e>, Failure> {
        let message = js::js_string(env, &self.message())?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `message` is a string of `env`, the environment of the callback running
        // on this thread; `raw` outlives the call. No `code` is passed: N-API would assign
        // it, running any setter on the prototype chain. It is defined below instead.
        let status = unsafe {
            if self.is_type_error() {
                sys::napi_create_type_error(
                    env.raw(),
                    std::ptr::null_mut(),
                    message.raw(),
                    &mut raw,
                )
            } else {
                sys::napi_create_error(env.raw(), std::ptr::null_mut(), message.raw(), &mut raw)
            }
        };
        if status != sys::Status::napi_ok {
            return Err(js::internal(env, "could not create an error"));
        }
        let mut error = Object::from_raw(env.raw(), raw);
        let mut props = vec![("code", js::js_string(env, self.code())?)];
        if let Failure::Core(e) = self {
            if let Some(status) = e.status() {
                props.push(("status", js::js_number(env, status as f64)?));
            }
            let refusal = match e {
                AuthError::CoolingDown { refusal, .. } => refusal.as_ref(),
                e => e,
            };
            if let AuthError::Auth {
                error: oauth_error,
                error_description,
                ..
            } = refusal
            {
                props.push(("error", js::js_string(env, oauth_error)?));
                if let Some(d) = error_description {
                    props.push(("error_description", js::js_string(env, d)?));
                }
            }
            if let Some(wait) = e.retry_after() {
                props.push(("retryAfterMs", js::js_number(env, wait.as_millis() as f64)?));
            }
            match e {
                AuthError::Http { body, .. } => props.push(("body", js::js_string(env, body)?)),
                AuthError::Api { code, detail, .. } => {
                    if let Some(code) = code {
                        props.push(("apiCode", js::js_string(env, code)?));
                    }
                    if let Some(detail) = detail {
                        props.push(("detail", js::js_string(env, detail)?));
                    }
                }
                AuthError::Aborted => {
                    props.push(("name", js::js_string(env, "AbortError")?));
                    if let Some(reason) =
                        abort_reason.filter(|r| js::kind(r) != napi::ValueType::Undefined)
                    {
                        props.push(("cause", reason));
                    }
                }
                _ => {}
            }
        }
        js::define(env, &mut error, &props)?;
        Ok(error.to_unknown())
    }

    /// The error object, or, should even making that fail, the plainest value we can
    /// make: a call must settle whatever happens.
    pub fn to_js_or_fallback<'e>(
        &self,
        env: &'e Env,
        abort_reason: Option<Unknown<'e>>,
    ) -> Result<Unknown<'e>, Failure> {
        self.to_js(env, abort_reason).or_else(|_| {
            js::clear_exception(env);
            Failure::Core(AuthError::Internal(
                "could not build the error object".into(),
            ))
            .to_js(env, None)
            .or_else(|_| js::undefined(env))
        })
    }
}

/// Whether `value` is shaped like one of our errors: an `Error` with one of our codes
/// (an own property) and the own properties that code promises.
pub fn is_ours(env: &Env, value: &Unknown) -> bool {
    let ours = (|| {
        let object = js::object(value)?;
        if !value.is_error().ok()? {
            return Some(false);
        }
        let own = |name: &str| -> Option<Unknown> {
            object.has_own_property(name).ok()?.then_some(())?;
            object.get_named_property_unchecked::<Unknown>(name).ok()
        };
        let text = |name: &str| own(name).as_ref().and_then(js::string).is_some();
        let number = |name: &str| own(name).as_ref().and_then(js::number).is_some();
        // Optional: absent, undefined, or of its type.
        let maybe = |name: &str, ty: ValueType| {
            own(name).is_none_or(|v| [ValueType::Undefined, ty].contains(&js::kind(&v)))
        };
        let maybe_text = |name: &str| maybe(name, ValueType::String);
        let maybe_number = |name: &str| maybe(name, ValueType::Number);
        let named = |expected: &str| {
            object
                .get_named_property_unchecked::<Unknown>("name")
                .ok()
                .as_ref()
                .and_then(js::string)
                .and_then(|n| js::read_utf8(n, 64, "name").ok())
                .is_some_and(|n| n == expected)
        };
        let code = own("code")?;
        let code = js::read_utf8(js::string(&code)?, 64, "code").ok()?;
        Some(match code.as_str() {
            "ERR_SONETEL_AUTH" => {
                number("status")
                    && text("error")
                    && maybe_text("error_description")
                    && maybe_number("retryAfterMs")
            }
            "ERR_SONETEL_HTTP" => number("status") && text("body") && maybe_number("retryAfterMs"),
            "ERR_SONETEL_RESPONSE" => number("status"),
            "ERR_SONETEL_API" => number("status") && maybe_text("apiCode") && maybe_text("detail"),
            "ERR_INVALID_ARG_TYPE" | "ERR_INVALID_ARG_VALUE" => named("TypeError"),
            "ABORT_ERR" => named("AbortError"),
            "ERR_SONETEL_TIMEOUT" | "ERR_SONETEL_NETWORK" | "ERR_SONETEL_INTERNAL" => true,
            _ => false,
        })
    })();
    js::clear_exception(env);
    ours.unwrap_or(false)
}
