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

/// The per-environment state. No JavaScript runs while one of its cells is borrowed: a
/// getter or callback that calls back into the addon finds it free.
pub struct Instance {
    live: RefCell<Option<Live>>,
    js: RefCell<JsCache>,
    pub mailbox: Arc<Mailbox>,
}

struct Live {
    pending: HashMap<u64, Pending>,
    next_id: u64,
    /// The token managers made here: their fetches stop with the environment.
    managers: Vec<Weak<TokenManager>>,
}

/// JavaScript functions looked up (or compiled) once, on first use.
#[derive(Default)]
struct JsCache {
    /// `JSON.parse` and `JSON.stringify`.
    json: Option<(JsFn, JsFn)>,
    /// `follow` of `signal.js`.
    follow: Option<JsFn>,
    /// `prepare` and `respond` of `fetch.js`.
    fetch: Option<(JsFn, JsFn)>,
    /// A look-up is running (and may run user code that calls back in).
    busy: bool,
}

impl Instance {
    /// This environment's instance, made on first use. It is registered before any
    /// JavaScript can run, so a getter that calls back into the addon meanwhile finds this
    /// one instead of making a second.
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

    /// Runs no JavaScript: only makes the completion path.
    fn create(env: &Env) -> Result<Instance, Failure> {
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
                managers: Vec::new(),
            })),
            js: RefCell::default(),
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

    /// A cached function of this environment (`pick` chooses it), looked up or compiled
    /// by `make` the first time. None while another look-up runs (`make` may run user code
    /// that calls back in) or if `make` fails; the cells are never borrowed across it.
    fn cached<'e>(
        &self,
        env: &'e Env,
        pick: impl Fn(&JsCache) -> Option<&JsFn>,
        make: impl FnOnce() -> Option<()>,
    ) -> Option<Unknown<'e>> {
        let found = {
            let cache = self.js.borrow();
            if cache.busy && pick(&cache).is_none() {
                return None;
            }
            pick(&cache).map(|f| f.borrow_back(env))
        };
        if let Some(f) = found {
            return f.ok().map(|f| f.to_unknown());
        }
        self.js.borrow_mut().busy = true;
        let made = make();
        self.js.borrow_mut().busy = false;
        js::clear_exception(env);
        made?;
        let f = pick(&self.js.borrow())?.borrow_back(env).ok()?;
        Some(f.to_unknown())
    }

    /// A function value kept for later.
    fn keep(env: &Env, value: Option<Unknown>) -> Option<JsFn> {
        let f = js::function(&value?)?;
        let kept = f.create_ref().ok();
        js::clear_exception(env);
        kept
    }

    /// `JSON.parse` (`stringify` false) or `JSON.stringify` (true), as they were when
    /// first used.
    fn json<'e>(&self, env: &'e Env, stringify: bool) -> Option<Unknown<'e>> {
        let make = || {
            let global = env.get_global().ok()?;
            let json = global
                .get_named_property_unchecked::<Unknown>("JSON")
                .ok()?;
            let json = js::object(&json)?;
            let parse = Self::keep(
                env,
                json.get_named_property_unchecked::<Unknown>("parse").ok(),
            )?;
            let text = Self::keep(
                env,
                json.get_named_property_unchecked::<Unknown>("stringify")
                    .ok(),
            )?;
            self.js.borrow_mut().json = Some((parse, text));
            Some(())
        };
        if stringify {
            self.cached(env, |c| c.json.as_ref().map(|(_, s)| s), make)
        } else {
            self.cached(env, |c| c.json.as_ref().map(|(p, _)| p), make)
        }
    }

    /// `JSON.parse(text)`, or None if it threw.
    pub fn json_parse<'e>(&self, env: &'e Env, text: &str) -> Option<Unknown<'e>> {
        let parse = self.json(env, false)?;
        let text = js::js_string(env, text).ok()?;
        js::call(env, &parse, &js::undefined(env).ok()?, &[text])
    }

    /// `JSON.stringify(value)` as Rust text, or None if it threw, gave no string (a
    /// cycle, a nesting too deep, a `toJSON` that throws) or a text over `max_len` bytes.
    pub fn json_stringify(&self, env: &Env, value: Unknown, max_len: usize) -> Option<String> {
        let stringify = self.json(env, true)?;
        let text = js::call(env, &stringify, &js::undefined(env).ok()?, &[value])?;
        js::read_utf8(js::string(&text)?, max_len, "").ok()
    }

    /// Compiles one of our own JavaScript helpers (`signal.js`, `fetch.js`): an expression
    /// whose value is an object of functions.
    fn compile(env: &Env, source: &str, names: &[&str]) -> Option<Vec<JsFn>> {
        let helpers = env.run_script::<_, Unknown>(source).ok();
        js::clear_exception(env);
        let helpers = js::object(&helpers?)?;
        names
            .iter()
            .map(|name| {
                Self::keep(
                    env,
                    helpers.get_named_property_unchecked::<Unknown>(name).ok(),
                )
            })
            .collect()
    }

    /// A signal to listen on for `signal`: a signal of our own that follows it, one per
    /// signal (see `signal.js`), which other listeners on `signal` cannot stop and which
    /// gathers our listeners instead of the app's signal; or `signal` itself where it is
    /// not a native `AbortSignal` (a polyfill's, another realm's).
    pub fn follow_signal<'e>(&self, env: &'e Env, signal: &Unknown<'e>) -> Option<Unknown<'e>> {
        let follow = self.cached(
            env,
            |c| c.follow.as_ref(),
            || {
                let mut f = Self::compile(env, include_str!("signal.js"), &["follow"])?;
                self.js.borrow_mut().follow = f.pop();
                Some(())
            },
        )?;
        js::call(env, &follow, &js::undefined(env).ok()?, &[*signal])
    }

    /// `prepare` and `respond` of `fetch.js` (see there), compiled the first time.
    pub fn fetch_helpers<'e>(&self, env: &'e Env) -> Result<(Unknown<'e>, Unknown<'e>), Failure> {
        let make = || {
            let mut f = Self::compile(env, include_str!("fetch.js"), &["prepare", "respond"])?;
            let respond = f.pop()?;
            let prepare = f.pop()?;
            self.js.borrow_mut().fetch = Some((prepare, respond));
            Some(())
        };
        let prepare = self.cached(env, |c| c.fetch.as_ref().map(|(p, _)| p), make);
        let respond = self.cached(env, |c| c.fetch.as_ref().map(|(_, r)| r), || None);
        prepare
            .zip(respond)
            .ok_or_else(|| js::internal(env, "could not set up fetch"))
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
        drop(std::mem::take(&mut *self.js.borrow_mut()));
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
