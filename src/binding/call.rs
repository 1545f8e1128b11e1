//! Turning a core future into a JavaScript promise: the caller's `AbortSignal` wired to a
//! cancel token, and every outcome (value, core error, panic) settling the promise.

use std::future::Future;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue};

use super::js::{self, Held, Raw};
use crate::core::error::AuthError;
use crate::core::run::{guarded, CancelToken};

/// A promise rejected now with the error for `e`.
pub fn rejected<'e>(env: &'e Env, e: &AuthError) -> napi::Result<Unknown<'e>> {
    let error = js::error_value(env.raw(), e, None);
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), js::settled_promise(env, error, false)) })
}

/// A promise resolved now with `value`.
pub fn resolved<'e>(env: &'e Env, value: Raw) -> napi::Result<Unknown<'e>> {
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), js::settled_promise(env, value, true)) })
}

/// Listens on an `AbortSignal` until the call settles.
struct SignalHook {
    signal: Held,
    listener: Held,
}

impl SignalHook {
    fn attach(env: &Env, signal: Raw, cancel: CancelToken) -> Result<SignalHook, AuthError> {
        let raw = env.raw();
        let listener = env
            .create_function_from_closure::<(), (), _>("onAbort", move |_| {
                cancel.cancel();
                Ok(())
            })
            .map_err(|_| AuthError::Internal("could not create the abort listener".into()))?
            .raw();
        Self::call_method(raw, signal, "addEventListener", listener)?;
        Ok(SignalHook {
            signal: Held::new(raw, signal),
            listener: Held::new(raw, listener),
        })
    }

    fn call_method(
        env: sys::napi_env,
        signal: Raw,
        method: &str,
        listener: Raw,
    ) -> Result<(), AuthError> {
        let f = js::get_property(env, signal, method, "options.signal")?;
        let args = [js::string(env, "abort"), listener];
        let mut ignored = std::ptr::null_mut();
        let status =
            unsafe { sys::napi_call_function(env, signal, f, 2, args.as_ptr(), &mut ignored) };
        if status != sys::Status::napi_ok {
            js::clear_exception(env);
            return Err(AuthError::InvalidArgValue(format!(
                "options.signal.{method} threw"
            )));
        }
        Ok(())
    }

    /// Removes the listener (so a long-lived signal does not collect them) and returns
    /// `signal.reason` for the `AbortError`'s `cause`.
    fn detach(self, env: sys::napi_env) -> Option<Raw> {
        let signal = self.signal.value();
        let _ = Self::call_method(env, signal, "removeEventListener", self.listener.value());
        js::get_property(env, signal, "reason", "options.signal").ok()
    }
}

/// Runs `work` on the runtime and returns its promise. `to_js` builds the resolved value
/// on the JavaScript thread; an `AuthError` (or a panic) rejects with its error object.
pub fn spawn<'e, T, F>(
    env: &'e Env,
    signal: Option<Raw>,
    work: F,
    to_js: impl FnOnce(&Env, T) -> napi::Result<Raw> + 'static,
) -> napi::Result<Unknown<'e>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, AuthError>> + Send + 'static,
{
    let raw = env.raw();
    let mut hook = None;
    let mut cancel = None;
    if let Some(signal) = signal {
        let aborted = js::get_property(raw, signal, "aborted", "options.signal")
            .map(|v| js::get_bool(raw, v));
        match aborted {
            Ok(true) => {
                let reason = js::get_property(raw, signal, "reason", "options.signal").ok();
                let error = js::error_value(raw, &AuthError::Aborted, reason);
                return Ok(unsafe {
                    Unknown::from_raw_unchecked(raw, js::settled_promise(env, error, false))
                });
            }
            Ok(false) => {}
            Err(e) => return rejected(env, &e),
        }
        let token = CancelToken::default();
        match SignalHook::attach(env, signal, token.clone()) {
            Ok(h) => hook = Some(h),
            Err(e) => return rejected(env, &e),
        }
        cancel = Some(token);
    }
    let future = async move { Ok::<_, napi::Error>(guarded(work, cancel).await) };
    let promise = env.spawn_future_with_callback(future, move |env, outcome| {
        let raw = env.raw();
        let reason = hook.and_then(|h| h.detach(raw));
        let value =
            match outcome.and_then(|t| to_js(env, t).map_err(|e| AuthError::Internal(e.reason))) {
                Ok(value) => return Ok(unsafe { Unknown::from_raw_unchecked(raw, value) }),
                Err(e) => js::error_value(raw, &e, reason),
            };
        Err(napi::Error::from(unsafe {
            Unknown::from_raw_unchecked(raw, value)
        }))
    })?;
    Ok(unsafe { Unknown::from_raw_unchecked(raw, promise.raw()) })
}
