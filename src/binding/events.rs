//! A token manager's callbacks: `onToken` with each new token, `onEvent` with each event,
//! and, with `NODE_DEBUG=sonetel-auth`, the same events as lines on stderr. Events come
//! from the runtime's thread and are delivered on the environment's own, through its
//! mailbox, in the order they happened. No event holds a secret.

use std::sync::Arc;
use std::time::SystemTime;

use napi::bindgen_prelude::{FunctionRef, JsObjectValue, Unknown};
use napi::{Env, JsValue};
use serde_json::{json, Value};

use super::error::Failure;
use super::instance::{Instance, Mailbox};
use super::js;
use crate::core::error::AuthError;
use crate::core::manager::{Listener, ManagerEvent};
use crate::core::secret::Secret;
use crate::core::token::{to_epoch_secs, TokenResponse};

type JsFn = FunctionRef<Unknown<'static>, Unknown<'static>>;

/// What a manager calls back.
pub struct Hooks {
    on_token: Option<JsFn>,
    on_event: Option<JsFn>,
    debug: bool,
    /// Scrubbed from the messages of `onToken` failures, which are the app's own text.
    password: Secret,
}

/// `NODE_DEBUG` names `sonetel-auth` (case-insensitive, `*` as a wildcard), as Node's
/// `util.debuglog` reads it.
fn debug_enabled() -> bool {
    let Ok(list) = std::env::var("NODE_DEBUG") else {
        return false;
    };
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .any(|pattern| wildcard(&pattern.to_ascii_lowercase(), "sonetel-auth"))
}

fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len().min(name.len())).any(|i| {
                    name.get(head.len() + i..)
                        .is_some_and(|rest| wildcard(tail, rest))
                })
        }
    }
}

/// The listener for a manager with these callbacks, or None when nobody listens.
pub fn listener(
    env: &Env,
    on_token: Option<Unknown>,
    on_event: Option<Unknown>,
    password: Secret,
) -> Result<Option<Listener>, Failure> {
    let keep = |f: Option<Unknown>| -> Result<Option<JsFn>, Failure> {
        f.as_ref()
            .and_then(js::function)
            .map(|f| {
                f.create_ref()
                    .map_err(|_| js::internal(env, "could not keep a callback"))
            })
            .transpose()
    };
    let hooks = Hooks {
        on_token: keep(on_token)?,
        on_event: keep(on_event)?,
        debug: debug_enabled(),
        password,
    };
    if hooks.on_token.is_none() && hooks.on_event.is_none() && !hooks.debug {
        return Ok(None);
    }
    let hooks = Arc::new(hooks);
    let mailbox: Arc<Mailbox> = Arc::clone(&Instance::get(env)?.mailbox);
    Ok(Some(Arc::new(move |event: ManagerEvent| {
        let hooks = Arc::clone(&hooks);
        mailbox.post_task(Box::new(move |env| hooks.deliver(env, event)));
    })))
}

fn code(e: &AuthError) -> &'static str {
    Failure::Core(e.clone()).code()
}

/// Whole milliseconds since the epoch (an integer, so debug lines print no `.0`).
fn epoch_ms(t: SystemTime) -> i64 {
    (to_epoch_secs(t) * 1000.0).round() as i64
}

/// The event as the plain object `onEvent` receives.
pub fn event_json(event: &ManagerEvent) -> Value {
    match event {
        ManagerEvent::Request { grant, attempt } => {
            json!({ "type": "request", "grant": grant.as_str(), "attempt": attempt })
        }
        ManagerEvent::Token {
            grant, expires_at, ..
        } => {
            json!({ "type": "token", "grant": grant.as_str(), "expiresAt": expires_at.map(epoch_ms) })
        }
        ManagerEvent::Retry {
            attempt,
            delay,
            error,
        } => {
            let mut v = json!({
                "type": "retry", "attempt": attempt, "delayMs": delay.as_millis() as u64, "code": code(error),
            });
            if let Some(status) = error.status() {
                v["status"] = json!(status);
            }
            v
        }
        ManagerEvent::Fallback { error } => {
            json!({ "type": "fallback", "from": "refresh_token", "to": "password", "code": code(error) })
        }
        ManagerEvent::Refused { grant, error } => {
            let oauth = match error {
                AuthError::Auth { error, .. } => Some(error.as_str()),
                _ => None,
            };
            json!({ "type": "refused", "grant": grant.as_str(), "status": error.status(), "error": oauth })
        }
        ManagerEvent::Cooldown { until } => {
            json!({ "type": "cooldown", "untilMs": epoch_ms(*until) })
        }
        ManagerEvent::Shared { expires_at } => {
            json!({ "type": "shared", "expiresAt": expires_at.map(epoch_ms) })
        }
        ManagerEvent::StoreUnavailable { error } => {
            json!({ "type": "store-unavailable", "message": error.0 })
        }
        ManagerEvent::StoreAvailable => json!({ "type": "store-available" }),
        ManagerEvent::StaleServed { error } => {
            json!({ "type": "stale-served", "code": code(error) })
        }
    }
}

impl Hooks {
    fn deliver(self: &Arc<Self>, env: &Env, event: ManagerEvent) {
        self.report(env, &event_json(&event));
        if let (ManagerEvent::Token { token, .. }, Some(on_token)) = (&event, &self.on_token) {
            self.call_on_token(env, on_token, token);
        }
    }

    /// Hands `event` to `onEvent` and the debug log. What `onEvent` throws is dropped:
    /// a listener cannot break the manager.
    fn report(&self, env: &Env, event: &Value) {
        let text = event.to_string();
        if self.debug {
            eprintln!("SONETEL-AUTH {}: {text}", std::process::id());
        }
        let Some(on_event) = &self.on_event else {
            return;
        };
        let (Ok(instance), Ok(f), Ok(undefined)) = (
            Instance::get(env),
            on_event.borrow_back(env),
            js::undefined(env),
        ) else {
            return;
        };
        if let Some(object) = instance.json_parse(env, &text) {
            js::call(env, &f.to_unknown(), &undefined, &[object]);
        }
    }

    /// Calls `onToken(token)`. A throw, or a rejection of the promise it returns, becomes
    /// an `onToken-failed` event, never an unhandled rejection.
    fn call_on_token(self: &Arc<Self>, env: &Env, on_token: &JsFn, token: &Arc<TokenResponse>) {
        let (Ok(f), Ok(undefined)) = (on_token.borrow_back(env), js::undefined(env)) else {
            return;
        };
        let Some(value) = Instance::get(env)
            .ok()
            .and_then(|i| i.json_parse(env, token.json()))
        else {
            return;
        };
        let Some(result) = js::call_catching(env, &f.to_unknown(), &undefined, &[value]) else {
            return;
        };
        let thrown = match result {
            Ok(result) => return self.watch_promise(env, result, token),
            Err(thrown) => thrown,
        };
        let message = self.message_of(env, thrown, token);
        self.report(
            env,
            &json!({ "type": "onToken-failed", "message": message }),
        );
    }

    /// When `onToken` returned a thenable, reports its rejection.
    fn watch_promise(self: &Arc<Self>, env: &Env, result: Unknown, token: &Arc<TokenResponse>) {
        let Some(object) = js::object(&result) else {
            return;
        };
        // A real promise gets the intrinsic `then`: its own `then` or `catch` may be
        // anything, and a rejection must not go unhandled.
        let then = if result.is_promise().unwrap_or(false) {
            js::promise_then(env)
        } else {
            object.get_named_property_unchecked::<Unknown>("then")
        };
        let then = match then {
            Ok(then) if js::kind(&then) == napi::ValueType::Function => then,
            Ok(_) => return,
            Err(_) => {
                js::clear_exception(env);
                let message = "onToken returned a value whose then could not be read";
                return self.report(
                    env,
                    &json!({ "type": "onToken-failed", "message": message }),
                );
            }
        };
        let hooks = Arc::clone(self);
        let token = Arc::clone(token);
        let on_rejected =
            env.create_function_from_closure::<(), (), _>("onTokenRejected", move |ctx| {
                let env = *ctx.env;
                if let Ok(reason) = ctx.get::<Unknown>(0) {
                    let message = hooks.message_of(&env, reason, &token);
                    hooks.report(
                        &env,
                        &json!({ "type": "onToken-failed", "message": message }),
                    );
                }
                js::clear_exception(&env);
                Ok(())
            });
        let (Ok(on_rejected), Ok(undefined)) = (on_rejected, js::undefined(env)) else {
            return;
        };
        if js::call(env, &then, &result, &[undefined, on_rejected.to_unknown()]).is_none() {
            let message = "onToken returned a thenable whose then threw";
            self.report(
                env,
                &json!({ "type": "onToken-failed", "message": message }),
            );
        }
    }

    /// The message of what `onToken` threw, without any secret in it.
    fn message_of(&self, env: &Env, thrown: Unknown, token: &TokenResponse) -> String {
        let message = js::object(&thrown)
            .and_then(
                |o| match o.get_named_property_unchecked::<Unknown>("message") {
                    Ok(m) => Some(m),
                    Err(_) => {
                        js::clear_exception(env);
                        None
                    }
                },
            )
            .or(Some(thrown))
            .and_then(|m| js::string(&m))
            .and_then(|s| js::read_utf8(s, 64 * 1024, "message").ok());
        let mut message =
            message.unwrap_or_else(|| "onToken failed with a value that is not an Error".into());
        let secrets = [
            Some(self.password.expose()),
            Some(token.access_token()),
            token.refresh_token(),
        ];
        let secrets: Vec<&str> = secrets.into_iter().flatten().collect();
        // Scrubbed before the cut, so no cut keeps the start of a token.
        crate::core::error::scrub(&mut message, &secrets);
        crate::core::error::truncate_utf8(&message, 500).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_debug_patterns() {
        assert!(wildcard("sonetel-auth", "sonetel-auth"));
        assert!(wildcard("sonetel-*", "sonetel-auth"));
        assert!(wildcard("*", "sonetel-auth"));
        assert!(wildcard("*auth", "sonetel-auth"));
        assert!(!wildcard("http", "sonetel-auth"));
        assert!(!wildcard("sonetel", "sonetel-auth"));
    }
}
