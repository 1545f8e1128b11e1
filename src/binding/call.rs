//! Turning a core future into a JavaScript promise: the caller's `AbortSignal` wired to a
//! cancel token, and every outcome (value, core error, panic) settling the promise.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

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

/// The error for `e`, for a synchronous call to throw (napi-rs throws the very object).
pub fn thrown(env: &Env, e: &AuthError) -> napi::Error {
    let raw = env.raw();
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(raw, js::error_value(raw, e, None)) })
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

/// One result on its way back from the runtime to the JavaScript thread.
struct Completion {
    id: u64,
    outcome: Box<dyn Any + Send>,
}

/// Turns a call's outcome into the value to resolve with (Ok) or reject with (Err).
type Finish = Box<dyn FnOnce(&Env, Box<dyn Any + Send>) -> Result<Raw, Raw>>;

/// What the JavaScript thread keeps for a call until its result arrives.
struct Pending {
    deferred: sys::napi_deferred,
    finish: Finish,
}

/// Per JavaScript thread (main or worker): one thread-safe function that carries every
/// result back, instead of napi-rs's one per promise. A thread-safe function costs a libuv
/// handle to create and to close; sharing one saves that on every call, and its wake-ups
/// coalesce under load. It holds the event loop open only while calls are pending.
struct Completions {
    env: sys::napi_env,
    mailbox: Arc<Mailbox>,
    pending: RefCell<HashMap<u64, Pending>>,
    next_id: Cell<u64>,
}

/// Where the runtime leaves results. The thread-safe function is called only when the
/// mailbox goes from empty to not empty, and the JavaScript thread takes every result in
/// one go: under load that is one wake-up and one lock per batch, not per call.
struct Mailbox {
    queue: Mutex<Vec<Completion>>,
    tsfn: SendTsfn,
}

impl Mailbox {
    fn post(&self, completion: Completion) {
        let wake = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push(completion);
            queue.len() == 1
        };
        if wake {
            // Fails only while the environment closes; then nobody is left to tell.
            unsafe {
                sys::napi_call_threadsafe_function(
                    self.tsfn.0,
                    std::ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
        }
    }

    fn take_all(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Clone, Copy)]
struct SendTsfn(sys::napi_threadsafe_function);
// A thread-safe function is made to be called from any thread.
unsafe impl Send for SendTsfn {}
unsafe impl Sync for SendTsfn {}

thread_local! {
    static COMPLETIONS: RefCell<Option<Rc<Completions>>> = const { RefCell::new(None) };
}

impl Completions {
    fn for_env(env: sys::napi_env) -> Result<Rc<Completions>, AuthError> {
        COMPLETIONS.with(|slot| {
            if let Some(c) = slot.borrow().as_ref().filter(|c| c.env == env) {
                return Ok(c.clone());
            }
            let mut tsfn = std::ptr::null_mut();
            let name = js::string(env, "sonetel-auth");
            let status = unsafe {
                sys::napi_create_threadsafe_function(
                    env,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    name,
                    0,
                    1,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut(),
                    Some(deliver),
                    &mut tsfn,
                )
            };
            if status != sys::Status::napi_ok {
                return Err(AuthError::Internal(
                    "could not create the completion queue".into(),
                ));
            }
            unsafe {
                sys::napi_unref_threadsafe_function(env, tsfn);
                sys::napi_add_env_cleanup_hook(env, Some(env_cleanup), std::ptr::null_mut());
            }
            let c = Rc::new(Completions {
                env,
                mailbox: Arc::new(Mailbox {
                    queue: Mutex::default(),
                    tsfn: SendTsfn(tsfn),
                }),
                pending: RefCell::default(),
                next_id: Cell::new(0),
            });
            *slot.borrow_mut() = Some(c.clone());
            Ok(c)
        })
    }

    fn add(&self, pending: Pending) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut map = self.pending.borrow_mut();
        if map.is_empty() {
            unsafe { sys::napi_ref_threadsafe_function(self.env, self.mailbox.tsfn.0) };
        }
        map.insert(id, pending);
        id
    }

    fn take(&self, id: u64) -> Option<Pending> {
        let mut map = self.pending.borrow_mut();
        let pending = map.remove(&id);
        if pending.is_some() && map.is_empty() {
            unsafe { sys::napi_unref_threadsafe_function(self.env, self.mailbox.tsfn.0) };
        }
        pending
    }
}

/// Runs on the JavaScript thread when the mailbox has results: settles their promises.
unsafe extern "C" fn deliver(env: sys::napi_env, _: Raw, _: *mut c_void, _: *mut c_void) {
    if env.is_null() {
        return; // the environment is going away; nobody is left to tell
    }
    let Some(c) = COMPLETIONS.with(|slot| slot.borrow().clone()) else {
        return;
    };
    let env = Env::from_raw(env);
    for completion in c.mailbox.take_all() {
        let Some(pending) = c.take(completion.id) else {
            continue;
        };
        match (pending.finish)(&env, completion.outcome) {
            Ok(value) => unsafe { sys::napi_resolve_deferred(env.raw(), pending.deferred, value) },
            Err(error) => unsafe { sys::napi_reject_deferred(env.raw(), pending.deferred, error) },
        };
    }
}

unsafe extern "C" fn env_cleanup(_: *mut c_void) {
    js::forget_env_state();
    if let Some(c) = COMPLETIONS.with(|slot| slot.borrow_mut().take()) {
        unsafe {
            sys::napi_release_threadsafe_function(
                c.mailbox.tsfn.0,
                sys::ThreadsafeFunctionReleaseMode::abort,
            )
        };
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
    let completions = match Completions::for_env(raw) {
        Ok(c) => c,
        Err(e) => return rejected(env, &e),
    };
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

    let mut deferred = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    unsafe { sys::napi_create_promise(raw, &mut deferred, &mut promise) };
    let finish = move |env: &Env, outcome: Box<dyn Any + Send>| {
        let raw = env.raw();
        let reason = hook.and_then(|h| h.detach(raw));
        let outcome = match outcome.downcast::<Result<T, AuthError>>() {
            Ok(outcome) => *outcome,
            Err(_) => Err(AuthError::Internal("mismatched completion".into())),
        };
        match outcome.and_then(|t| to_js(env, t).map_err(|e| AuthError::Internal(e.reason))) {
            Ok(value) => Ok(value),
            Err(e) => Err(js::error_value(raw, &e, reason)),
        }
    };
    let id = completions.add(Pending {
        deferred,
        finish: Box::new(finish),
    });
    let mailbox = Arc::clone(&completions.mailbox);
    napi::bindgen_prelude::spawn(async move {
        let outcome: Box<dyn Any + Send> = Box::new(guarded(work, cancel).await);
        mailbox.post(Completion { id, outcome });
    });
    Ok(unsafe { Unknown::from_raw_unchecked(raw, promise) })
}
