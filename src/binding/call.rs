//! Turning a core future into a JavaScript promise: the caller's `AbortSignal` wired to a
//! cancel token, and every outcome (value, core error, panic) settling the promise.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::{FunctionRef, JsObjectValue, ObjectRef, Unknown};
use napi::{Env, JsValue};

use super::error::Failure;
use super::instance::{Completion, Deferred, Instance, Pending, Settled};
use super::js;
use crate::core::error::AuthError;
use crate::core::run::{guarded, CancelToken};
use crate::core::runtime;

/// A promise rejected now with the error for `failure`.
pub fn rejected<'e>(env: &'e Env, failure: Failure) -> napi::Result<Unknown<'e>> {
    settled(env, Err((failure, None)))
}

/// A promise resolved now with `value`.
pub fn resolved<'e>(env: &'e Env, value: Unknown<'e>) -> napi::Result<Unknown<'e>> {
    settled(env, Ok(value))
}

fn settled<'e>(env: &'e Env, outcome: Settled<'e>) -> napi::Result<Unknown<'e>> {
    match Deferred::new(env) {
        Ok((deferred, promise)) => {
            deferred.settle(env, outcome);
            Ok(promise)
        }
        // Without a promise there is nothing to reject: throwing is all that is left.
        Err(f) => Err(thrown(env, &f)),
    }
}

/// The error for `failure`, for a synchronous call to throw. napi-rs throws this very
/// object; capturing it "without coercion" runs none of its (or its prototype's) code.
pub fn thrown(env: &Env, failure: &Failure) -> napi::Error {
    match failure.to_js_or_fallback(env, None) {
        Ok(error) => napi::Error::from_unknown_without_coercion(error),
        Err(_) => napi::Error::from_reason(failure.code()),
    }
}

/// Listens on an `AbortSignal` until the call settles.
struct SignalHook {
    /// The caller's signal, for its `reason`.
    signal: ObjectRef<false>,
    /// What the listener is on: a signal of our own that follows the caller's (see
    /// `Instance::follow_signal`), or the caller's own where that cannot be made.
    target: ObjectRef<false>,
    listener: FunctionRef<(), ()>,
}

impl SignalHook {
    fn attach<'e>(
        env: &'e Env,
        instance: &Instance,
        signal: Unknown<'e>,
        cancel: CancelToken,
    ) -> Result<Result<SignalHook, Option<Unknown<'e>>>, Failure> {
        let bad = |what: &str| {
            let what = what.to_owned();
            move || Failure::ArgValue(format!("options.signal.{what} could not be read"))
        };
        let object = js::object(&signal)
            .ok_or_else(|| Failure::ArgType("options.signal must be an AbortSignal".into()))?;
        let aborted = js::guard(
            env,
            || object.get_named_property_unchecked::<Unknown>("aborted"),
            bad("aborted"),
        )?;
        if js::boolean(&aborted) == Some(true) {
            let reason = js::guard(
                env,
                || object.get_named_property_unchecked::<Unknown>("reason"),
                bad("reason"),
            )
            .ok();
            return Ok(Err(reason));
        }
        let target = instance.follow_signal(env, &signal).unwrap_or(signal);
        let target = js::object(&target).ok_or_else(bad("aborted"))?;
        let listener = env
            .create_function_from_closure::<(), (), _>("onAbort", move |_| {
                cancel.cancel();
                Ok(())
            })
            .map_err(|_| js::internal(env, "could not create the abort listener"))?;
        let add = js::guard(
            env,
            || target.get_named_property_unchecked::<Unknown>("addEventListener"),
            bad("addEventListener"),
        )?;
        let args = [js::js_string(env, "abort")?, listener.to_unknown()];
        js::call(env, &add, &target.to_unknown(), &args).ok_or_else(bad("addEventListener"))?;
        let keep = || js::internal(env, "could not keep the signal");
        Ok(Ok(SignalHook {
            signal: object.create_ref::<false>().map_err(|_| keep())?,
            target: target.create_ref::<false>().map_err(|_| keep())?,
            listener: listener.create_ref().map_err(|_| keep())?,
        }))
    }

    /// Removes the listener (so a long-lived signal does not collect them) and, when the
    /// call was aborted, returns `signal.reason` for the `AbortError`'s `cause`.
    fn detach<'e>(self, env: &'e Env, aborted: bool) -> Option<Unknown<'e>> {
        let mut reason = None;
        if let (Ok(target), Ok(listener)) =
            (self.target.get_value(env), self.listener.borrow_back(env))
        {
            if let Ok(remove) =
                target.get_named_property_unchecked::<Unknown>("removeEventListener")
            {
                if let Ok(abort) = js::js_string(env, "abort") {
                    js::call(
                        env,
                        &remove,
                        &target.to_unknown(),
                        &[abort, listener.to_unknown()],
                    );
                }
            }
        }
        if aborted {
            if let Ok(signal) = self.signal.get_value(env) {
                reason = signal
                    .get_named_property_unchecked::<Unknown>("reason")
                    .ok();
            }
        }
        let _ = self.signal.unref(env);
        let _ = self.target.unref(env);
        js::clear_exception(env);
        reason
    }
}

/// Runs `work` on the runtime and returns its promise. `to_js` builds the resolved value
/// on the JavaScript thread; an `AuthError` (or a panic) rejects with its error object.
/// The call stops when `signal` fires or when its environment goes away.
pub fn spawn<'e, T, F, J>(
    env: &'e Env,
    signal: Option<Unknown<'e>>,
    work: F,
    to_js: J,
) -> napi::Result<Unknown<'e>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, AuthError>> + Send + 'static,
    J: for<'a> FnOnce(&'a Env, T) -> Result<Unknown<'a>, Failure> + 'static,
{
    match Deferred::new(env) {
        Ok((deferred, promise)) => {
            spawn_into(env, deferred, signal, work, to_js);
            Ok(promise)
        }
        Err(f) => rejected(env, f),
    }
}

/// [`spawn`], settling a promise made earlier.
pub fn spawn_into<'e, T, F, J>(
    env: &'e Env,
    deferred: Deferred,
    signal: Option<Unknown<'e>>,
    work: F,
    to_js: J,
) where
    T: Send + 'static,
    F: Future<Output = Result<T, AuthError>> + Send + 'static,
    J: for<'a> FnOnce(&'a Env, T) -> Result<Unknown<'a>, Failure> + 'static,
{
    let instance = match Instance::get(env) {
        Ok(i) => i,
        Err(f) => return deferred.settle(env, Err((f, None))),
    };
    let cancel = CancelToken::default();
    let mut hook = None;
    if let Some(signal) = signal {
        match SignalHook::attach(env, &instance, signal, cancel.clone()) {
            Ok(Ok(h)) => hook = Some(h),
            Ok(Err(reason)) => {
                return deferred.settle(env, Err((Failure::Core(AuthError::Aborted), reason)))
            }
            Err(f) => return deferred.settle(env, Err((f, None))),
        }
    }
    let finish = finisher(move |env: &Env, outcome: Box<dyn Any + Send>| {
        let outcome = match outcome.downcast::<Result<T, AuthError>>() {
            Ok(outcome) => *outcome,
            Err(_) => Err(AuthError::Internal("mismatched completion".into())),
        };
        let reason = hook.and_then(|h| h.detach(env, matches!(outcome, Err(AuthError::Aborted))));
        match outcome.map_err(Failure::Core).and_then(|t| to_js(env, t)) {
            Ok(value) => Ok(value),
            Err(f) => Err((f, reason)),
        }
    });
    let pending = Pending {
        deferred,
        cancel: cancel.clone(),
        finish,
    };
    let id = match instance.add(env, pending) {
        Ok(id) => id,
        Err(pending) => {
            let shutting = AuthError::Internal("the environment is shutting down".into());
            return pending.deferred.settle(env, Err((shutting.into(), None)));
        }
    };
    let mailbox = std::sync::Arc::clone(&instance.mailbox);
    let spawned = runtime::spawn(async move {
        let outcome: Box<dyn Any + Send> = Box::new(guarded(work, Some(cancel)).await);
        mailbox.post(Completion { id, outcome });
    });
    if let Err(e) = spawned {
        if let Some(pending) = instance.take(env, id) {
            pending.deferred.settle(env, Err((e.into(), None)));
        }
    }
}

/// Pins down the closure's signature: it takes the environment it runs in and returns
/// values of that environment.
fn finisher<F>(f: F) -> super::instance::Finish
where
    F: for<'a> FnOnce(&'a Env, Box<dyn Any + Send>) -> Settled<'a> + 'static,
{
    Box::new(f)
}

/// Runs JavaScript-thread work that must not unwind into N-API: a panic becomes an
/// internal error.
pub fn no_unwind<'e>(f: impl FnOnce() -> Settled<'e>) -> Settled<'e> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err((
            AuthError::Internal("panic while settling a call".into()).into(),
            None,
        ))
    })
}
