//! What each JavaScript environment (the main thread, each worker thread) owns: its pending
//! calls, the one thread-safe function that carries results back to it, and the few
//! JavaScript functions it looks up once. It is N-API instance data, so it is found per
//! environment (never by thread or by address, which a later environment may reuse), and
//! an environment clean-up hook tears it down: pending calls are cancelled, and the mailbox
//! the runtime posts to is closed before the thread-safe function goes away, so a result
//! that arrives later is dropped instead of delivered into freed memory.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::{FunctionRef, JsObjectValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, JsValue, Status};

use super::error::Failure;
use super::js;
use crate::core::manager::TokenManager;
use crate::core::run::CancelToken;

/// Wakes the environment's thread; unreferenced (weak) while no call is pending, so an
/// idle addon never keeps the process alive.
type Wake = ThreadsafeFunction<(), (), (), Status, false, true, 0>;
type JsFn = FunctionRef<Unknown<'static>, Unknown<'static>>;

/// How a call ends: the value to resolve with, or the failure to reject with and, for an
/// abort, the signal's reason.
pub type Settled<'e> = Result<Unknown<'e>, (Failure, Option<Unknown<'e>>)>;

/// Turns a call's outcome into how it settles, on the environment's thread.
pub type Finish = Box<dyn for<'e> FnOnce(&'e Env, Box<dyn Any + Send>) -> Settled<'e>>;

/// A promise that has not settled yet.
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    /// A new promise and the means to settle it.
    pub fn new(env: &Env) -> Result<(Deferred, Unknown<'_>), Failure> {
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        // SAFETY: `env` is the environment of the callback running on this thread; the out
        // pointers outlive the call. napi-rs has no safe deferred without a thread-safe
        // function per promise, which is what this module avoids.
        let status = unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
        if status != sys::Status::napi_ok {
            return Err(js::internal(env, "could not create a promise"));
        }
        // SAFETY: N-API returned `promise` for this environment.
        Ok((Deferred(deferred), unsafe {
            Unknown::from_raw_unchecked(env.raw(), promise)
        }))
    }

    /// Settles the promise; consuming `self` is what makes it happen once.
    pub fn settle(self, env: &Env, outcome: Settled) {
        let (resolve, value) = match outcome {
            Ok(value) => (true, value),
            Err((failure, reason)) => match failure.to_js_or_fallback(env, reason) {
                Ok(error) => (false, error),
                Err(_) => return, // the environment can no longer make even `undefined`
            },
        };
        // SAFETY: the deferred was made in `env` (every `Deferred` stays with the instance
        // of its environment) and is settled exactly once, here; the value is of `env`.
        let status = unsafe {
            if resolve {
                sys::napi_resolve_deferred(env.raw(), self.0, value.raw())
            } else {
                sys::napi_reject_deferred(env.raw(), self.0, value.raw())
            }
        };
        if status != sys::Status::napi_ok {
            js::clear_exception(env);
        }
    }
}

/// What the environment keeps for a call until its result arrives.
pub struct Pending {
    pub deferred: Deferred,
    /// Fired when the environment goes away, so the call stops and frees its connection.
    pub cancel: CancelToken,
    pub finish: Finish,
}

/// One result on its way from the runtime to the environment's thread.
pub struct Completion {
    pub id: u64,
    pub outcome: Box<dyn Any + Send>,
}

/// Work for the environment's thread that no call waits for (a token manager's events).
pub type Task = Box<dyn FnOnce(&Env) + Send>;

enum Delivery {
    Call(Completion),
    Task(Task),
}

/// Where the runtime leaves results. The thread-safe function is called only when the
/// queue goes from empty to not empty, and the environment's thread takes every result in
/// one go: under load that is one wake-up per batch, not per call.
pub struct Mailbox(Mutex<MailboxState>);

struct MailboxState {
    /// None once the environment is gone: nothing is queued or woken after that.
    wake: Option<Wake>,
    queue: Vec<Delivery>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called from the runtime. A result for an environment that is gone is dropped.
    pub fn post(&self, completion: Completion) {
        self.push(Delivery::Call(completion));
    }

    /// Queues `task` for the environment's thread; dropped if the environment is gone.
    /// It wakes the thread but does not keep its event loop alive.
    pub fn post_task(&self, task: Task) {
        self.push(Delivery::Task(task));
    }

    fn push(&self, delivery: Delivery) {
        let mut state = self.lock();
        let Some(wake) = &state.wake else { return };
        // Called under the lock, so teardown cannot release the function mid-call.
        let first = state.queue.is_empty();
        if first && wake.call((), ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
            return; // closing: the environment is on its way out
        }
        state.queue.push(delivery);
    }

    fn take_all(&self) -> Vec<Delivery> {
        std::mem::take(&mut self.lock().queue)
    }
}

/// The per-environment state.
pub struct Instance {
    live: RefCell<Option<Live>>,
    pub mailbox: Arc<Mailbox>,
}

struct Live {
    pending: HashMap<u64, Pending>,
    next_id: u64,
    json_parse: JsFn,
    json_stringify: JsFn,
    /// `AbortSignal` and `AbortSignal.any`, where the runtime has them.
    abort_signal: Option<(JsFn, JsFn)>,
    /// The token managers made here: their fetches stop with the environment.
    managers: Vec<Weak<TokenManager>>,
    /// `prepare` and `respond` of `fetch.js`, compiled on first use.
    fetch_helpers: Option<(JsFn, JsFn)>,
}

impl Instance {
    /// This environment's instance, made on first use.
    pub fn get(env: &Env) -> Result<Rc<Instance>, Failure> {
        if let Ok(Some(instance)) = env.get_instance_data::<Rc<Instance>>() {
            return Ok(Rc::clone(instance));
        }
        let instance = Rc::new(Instance::create(env)?);
        env.set_instance_data(Rc::clone(&instance), (), |_| {})
            .map_err(|_| js::internal(env, "could not keep per-environment state"))?;
        let weak = Rc::downgrade(&instance);
        env.add_env_cleanup_hook(weak, |weak| {
            if let Some(instance) = weak.upgrade() {
                instance.shutdown();
            }
        })
        .map_err(|_| js::internal(env, "could not register the clean-up hook"))?;
        Ok(instance)
    }

    fn create(env: &Env) -> Result<Instance, Failure> {
        let fail = || js::internal(env, "could not look up JSON and AbortSignal");
        let global = js::guard(env, || env.get_global(), fail)?;
        let json = js::guard(
            env,
            || global.get_named_property_unchecked::<Unknown>("JSON"),
            fail,
        )?;
        let json = js::object(&json).ok_or_else(fail)?;
        let method = |object: &dyn Fn(&str) -> napi::Result<Unknown<'_>>,
                      name: &str|
         -> Result<JsFn, Failure> {
            let value = js::guard(env, || object(name), fail)?;
            let f = js::function(&value).ok_or_else(fail)?;
            js::guard(env, || f.create_ref(), fail)
        };
        let json_parse = method(
            &|n| json.get_named_property_unchecked::<Unknown>(n),
            "parse",
        )?;
        let json_stringify = method(
            &|n| json.get_named_property_unchecked::<Unknown>(n),
            "stringify",
        )?;
        let abort_signal = global
            .get_named_property_unchecked::<Unknown>("AbortSignal")
            .ok()
            .and_then(|a| {
                let any = js::object(&a)?
                    .get_named_property_unchecked::<Unknown>("any")
                    .ok()?;
                let (a, any) = (js::function(&a)?, js::function(&any)?);
                Some((a.create_ref().ok()?, any.create_ref().ok()?))
            });
        js::clear_exception(env);

        let noop = env
            .create_function_from_closure::<(), (), _>("sonetel-auth", |_| Ok(()))
            .map_err(|_| js::internal(env, "could not create the completion callback"))?;
        let wake: Wake = noop
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| {
                deliver(&ctx.env);
                Ok(())
            })
            .map_err(|_| js::internal(env, "could not create the completion queue"))?;
        Ok(Instance {
            live: RefCell::new(Some(Live {
                pending: HashMap::new(),
                next_id: 0,
                json_parse,
                json_stringify,
                abort_signal,
                managers: Vec::new(),
                fetch_helpers: None,
            })),
            mailbox: Arc::new(Mailbox(Mutex::new(MailboxState {
                wake: Some(wake),
                queue: Vec::new(),
            }))),
        })
    }

    /// Keeps `pending` until its result arrives; the first pending call keeps the event
    /// loop alive until the last one settles.
    pub fn add(&self, env: &Env, pending: Pending) -> Result<u64, Pending> {
        let mut live = self.live.borrow_mut();
        let Some(live) = live.as_mut() else {
            return Err(pending);
        };
        if live.pending.is_empty() {
            if let Some(wake) = self.mailbox.lock().wake.as_mut() {
                #[allow(deprecated)] // the replacement (clones) does not exist in napi 3.16
                if wake.refer(env).is_err() {
                    js::clear_exception(env);
                }
            }
        }
        let id = live.next_id;
        live.next_id += 1;
        live.pending.insert(id, pending);
        Ok(id)
    }

    /// Ties `manager` to this environment: its fetch in flight stops when the environment
    /// goes away. Managers that are gone already are forgotten as new ones come.
    pub fn adopt(&self, manager: &Arc<TokenManager>) {
        if let Some(live) = self.live.borrow_mut().as_mut() {
            if live.managers.len() >= 16 && live.managers.len().is_power_of_two() {
                live.managers.retain(|m| m.strong_count() > 0);
            }
            live.managers.push(Arc::downgrade(manager));
        }
    }

    /// Takes back the call `id`, if it is still pending.
    pub fn take(&self, env: &Env, id: u64) -> Option<Pending> {
        let mut live = self.live.borrow_mut();
        let live = live.as_mut()?;
        let pending = live.pending.remove(&id)?;
        if live.pending.is_empty() {
            if let Some(wake) = self.mailbox.lock().wake.as_mut() {
                #[allow(deprecated)] // see `add`
                if wake.unref(env).is_err() {
                    js::clear_exception(env);
                }
            }
        }
        Some(pending)
    }

    /// `JSON.parse(text)`, or None if it threw.
    pub fn json_parse<'e>(&self, env: &'e Env, text: &str) -> Option<Unknown<'e>> {
        let parse = self
            .live
            .borrow()
            .as_ref()?
            .json_parse
            .borrow_back(env)
            .ok()?;
        let text = js::js_string(env, text).ok()?;
        js::call(env, &parse.to_unknown(), &js::undefined(env).ok()?, &[text])
    }

    /// `JSON.stringify(value)` as Rust text, or None if it threw, gave no string (a
    /// cycle, a nesting too deep, a `toJSON` that throws) or a text over `max_len` bytes.
    pub fn json_stringify(&self, env: &Env, value: Unknown, max_len: usize) -> Option<String> {
        let stringify = self
            .live
            .borrow()
            .as_ref()?
            .json_stringify
            .borrow_back(env)
            .ok()?;
        let text = js::call(
            env,
            &stringify.to_unknown(),
            &js::undefined(env).ok()?,
            &[value],
        )?;
        js::read_utf8(js::string(&text)?, max_len, "").ok()
    }

    /// `prepare` and `respond` of `fetch.js` (see there), compiled the first time.
    pub fn fetch_helpers<'e>(&self, env: &'e Env) -> Result<(Unknown<'e>, Unknown<'e>), Failure> {
        let fail = || js::internal(env, "could not set up fetch");
        let mut live = self.live.borrow_mut();
        let live = live.as_mut().ok_or_else(fail)?;
        if live.fetch_helpers.is_none() {
            let helpers = js::guard(
                env,
                || env.run_script::<_, Unknown>(include_str!("fetch.js")),
                fail,
            )?;
            let helpers = js::object(&helpers).ok_or_else(fail)?;
            let get = |name: &str| -> Result<JsFn, Failure> {
                let f = js::guard(
                    env,
                    || helpers.get_named_property_unchecked::<Unknown>(name),
                    fail,
                )?;
                let f = js::function(&f).ok_or_else(fail)?;
                js::guard(env, || f.create_ref(), fail)
            };
            live.fetch_helpers = Some((get("prepare")?, get("respond")?));
        }
        let (prepare, respond) = live.fetch_helpers.as_ref().ok_or_else(fail)?;
        let prepare = js::guard(env, || prepare.borrow_back(env), fail)?;
        let respond = js::guard(env, || respond.borrow_back(env), fail)?;
        Ok((prepare.to_unknown(), respond.to_unknown()))
    }

    /// `AbortSignal.any([signal])`: a signal of our own that follows `signal`, which other
    /// listeners on `signal` cannot stop and which collects no listeners on it. None where
    /// the runtime lacks it or `signal` is not a real `AbortSignal`.
    pub fn follow_signal<'e>(&self, env: &'e Env, signal: &Unknown<'e>) -> Option<Unknown<'e>> {
        let live = self.live.borrow();
        let (class, any) = live.as_ref()?.abort_signal.as_ref()?;
        let (class, any) = (class.borrow_back(env).ok()?, any.borrow_back(env).ok()?);
        let mut list = env.create_array(1).ok()?;
        js::define(env, &mut list, &[("0", *signal)]).ok()?;
        js::call(
            env,
            &any.to_unknown(),
            &class.to_unknown(),
            &[list.to_unknown()],
        )
    }

    /// The environment is going away: close the mailbox first (a result that arrives
    /// from now on is dropped), then cancel and forget every pending call. Their promises
    /// cannot settle any more: no JavaScript runs in an environment being torn down.
    fn shutdown(&self) {
        let wake = {
            let mut state = self.mailbox.lock();
            state.queue.clear();
            state.wake.take()
        };
        drop(wake);
        if let Some(live) = self.live.borrow_mut().take() {
            for manager in live.managers.iter().filter_map(Weak::upgrade) {
                manager.close();
            }
            for pending in live.pending.into_values() {
                pending.cancel.cancel();
                // The deferred is left unsettled: Node frees what it holds with the
                // environment.
            }
        }
    }
}

/// Runs on the environment's thread when the mailbox has results: settles their promises.
fn deliver(env: &Env) {
    let Ok(Some(instance)) = env.get_instance_data::<Rc<Instance>>() else {
        return;
    };
    let instance = Rc::clone(instance);
    for delivery in instance.mailbox.take_all() {
        let completion = match delivery {
            Delivery::Call(c) => c,
            Delivery::Task(task) => {
                // A panic must not unwind into N-API; the task's work is lost, no more.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(env)));
                js::clear_exception(env);
                continue;
            }
        };
        let Some(pending) = instance.take(env, completion.id) else {
            continue;
        };
        let finish = pending.finish;
        let settle = super::call::no_unwind(|| finish(env, completion.outcome));
        pending.deferred.settle(env, settle);
    }
}
