//! The way back to JavaScript: one `Channel` per instance of the face (`src/face`), made
//! with the face's `deliver(ids, texts)` function. The runtime posts each finished call
//! (and each manager event) to the channel's mailbox; the thread-safe function is called
//! when the mailbox goes from empty to not empty, and hands JavaScript the whole batch.
//! Per-environment state lives in N-API instance data: an environment clean-up hook
//! closes every mailbox and cancels its calls, so a result that arrives after its
//! environment is gone is dropped, never delivered into freed memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use napi::bindgen_prelude::{BufferSlice, FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

use crate::core::api::Failure;
use crate::core::error::AuthError;
use crate::core::manager::TokenManager;
use crate::core::run::{guarded, CancelToken};
use crate::core::runtime;

type Batch = FnArgs<(Vec<u32>, Vec<String>)>;
/// Weak: an idle channel never keeps the process alive; `hold` refers it while calls run.
type Deliver = ThreadsafeFunction<(), (), Batch, Status, false, true, 0>;

/// One finished call or event: the id JavaScript gave it, its text (see `outcome.rs`),
/// and, for `manager.fetch`, the response body.
pub struct Posted {
    pub id: u32,
    pub text: String,
    pub body: Option<Vec<u8>>,
}

#[derive(Default)]
struct MailboxState {
    /// None once the environment (or the channel) is gone: nothing is queued after that.
    wake: Option<Deliver>,
    queue: Vec<Posted>,
    /// The calls under way, to cancel by id.
    running: HashMap<u32, CancelToken>,
    /// Bodies of the batch being delivered, for `takeBody` while `deliver` runs.
    bodies: HashMap<u32, Vec<u8>>,
}

#[derive(Default)]
pub struct Mailbox(Mutex<MailboxState>);

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called from any thread. Dropped when the channel is closed.
    pub fn post(&self, posted: Posted) {
        let mut state = self.lock();
        state.running.remove(&posted.id);
        let Some(wake) = &state.wake else { return };
        // Under the lock, so closing cannot release the function mid-call.
        if state.queue.is_empty()
            && wake.call((), ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok
        {
            return; // closing: the environment is on its way out
        }
        state.queue.push(posted);
    }

    fn take_batch(&self) -> Batch {
        let mut state = self.lock();
        let queue = std::mem::take(&mut state.queue);
        state.bodies.clear();
        let mut ids = Vec::with_capacity(queue.len());
        let mut texts = Vec::with_capacity(queue.len());
        for posted in queue {
            if let Some(body) = posted.body {
                state.bodies.insert(posted.id, body);
            }
            ids.push(posted.id);
            texts.push(posted.text);
        }
        FnArgs::from((ids, texts))
    }

    fn close(&self) {
        let (wake, running) = {
            let mut state = self.lock();
            state.queue.clear();
            state.bodies.clear();
            (state.wake.take(), std::mem::take(&mut state.running))
        };
        for cancel in running.into_values() {
            cancel.cancel();
        }
        drop(wake);
    }
}

/// A face instance's completion path.
#[napi]
pub struct Channel {
    pub(crate) mailbox: Arc<Mailbox>,
}

#[napi]
impl Channel {
    /// `deliver(ids, texts)` is called on this thread with every batch of results.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "deliver: (ids: number[], texts: string[]) => void"
    )]
    pub fn new(env: &Env, deliver: Function<Batch, ()>) -> napi::Result<Self> {
        let mailbox = Arc::new(Mailbox::default());
        let weak = Arc::downgrade(&mailbox);
        let wake: Deliver = deliver
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| {
                Ok(weak.upgrade().map_or_else(
                    || FnArgs::from((Vec::new(), Vec::new())),
                    |m| m.take_batch(),
                ))
            })?;
        mailbox.lock().wake = Some(wake);
        let instance = Instance::get(env)?;
        let mut channels = instance.channels.borrow_mut();
        channels.retain(|c| c.strong_count() > 0);
        channels.push(Arc::downgrade(&mailbox));
        Ok(Channel { mailbox })
    }

    /// Keeps the process alive (`true`) while the face has calls under way.
    #[napi(catch_unwind)]
    pub fn hold(&self, env: &Env, on: bool) -> napi::Result<()> {
        let mut state = self.mailbox.lock();
        if let Some(wake) = state.wake.as_mut() {
            #[allow(deprecated)] // the replacement (clones) does not exist for a weak function
            if on {
                wake.refer(env)?;
            } else {
                wake.unref(env)?;
            }
        }
        Ok(())
    }

    /// Stops the call `id`: its signal fired. It settles with an abort.
    #[napi(catch_unwind)]
    pub fn cancel(&self, id: u32) {
        if let Some(cancel) = self.mailbox.lock().running.get(&id) {
            cancel.cancel();
        }
    }

    /// The body of the response `id` of the batch being delivered (once).
    #[napi(catch_unwind)]
    pub fn take_body<'e>(&self, env: &'e Env, id: u32) -> napi::Result<Option<BufferSlice<'e>>> {
        let body = self.mailbox.lock().bodies.remove(&id);
        body.map(|b| BufferSlice::copy_from(env, b)).transpose()
    }
}

impl Channel {
    /// [`Channel::spawn`] for work whose failures say which side failed: `encode` gets
    /// them as they are; an abort or a panic, which belong to no side, is encoded as is.
    pub fn spawn_sided<T, F, E>(&self, id: u32, work: F, encode: E)
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Failure>> + Send + 'static,
        E: FnOnce(Result<T, Failure>) -> (String, Option<Vec<u8>>) + Send + 'static,
    {
        let work = async move { Ok::<_, AuthError>(work.await) };
        self.spawn(id, work, move |outcome| match outcome {
            Ok(sided) => encode(sided),
            Err(e) => (super::outcome::error_text(&e), None),
        });
    }

    /// Runs `work` on the runtime as call `id`; what `encode` makes of its outcome is
    /// posted when it ends, an abort through `cancel` and a panic included.
    pub fn spawn<T, F, E>(&self, id: u32, work: F, encode: E)
    where
        T: Send + 'static,
        F: Future<Output = Result<T, AuthError>> + Send + 'static,
        E: FnOnce(Result<T, AuthError>) -> (String, Option<Vec<u8>>) + Send + 'static,
    {
        let cancel = CancelToken::default();
        let mailbox = Arc::clone(&self.mailbox);
        {
            let mut state = mailbox.lock();
            if state.wake.is_none() {
                return;
            }
            state.running.insert(id, cancel.clone());
        }
        let run = async move {
            let (text, body) = encode(guarded(work, Some(cancel)).await);
            mailbox.post(Posted { id, text, body });
        };
        if let Err(e) = runtime::spawn(run) {
            let text = super::outcome::error_text(&e);
            self.mailbox.post(Posted {
                id,
                text,
                body: None,
            });
        }
    }
}

/// What one JavaScript environment (the main thread, a worker) owns.
#[derive(Default)]
pub struct Instance {
    channels: RefCell<Vec<Weak<Mailbox>>>,
    managers: RefCell<Vec<Weak<TokenManager>>>,
}

impl Instance {
    /// This environment's instance, made on first use with its clean-up hook.
    pub fn get(env: &Env) -> napi::Result<Rc<Instance>> {
        if let Some(instance) = env.get_instance_data::<Rc<Instance>>()? {
            return Ok(Rc::clone(instance));
        }
        let instance = Rc::new(Instance::default());
        env.set_instance_data(Rc::clone(&instance), (), |_| {})?;
        env.add_env_cleanup_hook(Rc::downgrade(&instance), |weak| {
            if let Some(instance) = weak.upgrade() {
                instance.shutdown();
            }
        })?;
        Ok(instance)
    }

    /// Ties `manager` to this environment: its work stops when the environment goes.
    pub fn adopt(&self, manager: &Arc<TokenManager>) {
        let mut managers = self.managers.borrow_mut();
        if managers.len() >= 16 && managers.len().is_power_of_two() {
            managers.retain(|m| m.strong_count() > 0);
        }
        managers.push(Arc::downgrade(manager));
    }

    /// The environment is going away: no JavaScript runs any more, so every mailbox is
    /// closed (later results are dropped) and every call and manager is stopped.
    fn shutdown(&self) {
        for mailbox in self.channels.take().iter().filter_map(Weak::upgrade) {
            mailbox.close();
        }
        for manager in self.managers.take().iter().filter_map(Weak::upgrade) {
            drop(manager.close());
        }
    }
}
