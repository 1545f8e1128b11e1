//! The native side of `TokenManager`: the core's manager, its events posted to the face,
//! token descriptors (what the face caches so that a cached call never crosses into
//! Rust), and the send primitive under `manager.fetch` and `manager.api`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use napi::bindgen_prelude::{Buffer, Either};
use napi::Env;
use napi_derive::napi;
use reqwest::{StatusCode, Url};
use serde_json::json;

use super::channel::{Channel, Instance, Mailbox, Posted};
use super::config::{credential, ManagerJson, MAX_CREDENTIAL_LEN};
use super::outcome::{code, error_text, invalid_text, json_outcome, side_error_text, value_text};
use crate::core::api::{self, ApiRequest, CallBudget, Side};
use crate::core::error::AuthError;
use crate::core::manager::{Listener, ManagerEvent, Ticket, TokenManager};
use crate::core::token::{to_epoch_secs, TokenResponse};

/// Largest stored token (JSON text) the constructor reads.
const MAX_STORED_TOKEN: usize = 1024 * 1024;
/// Whole milliseconds since the epoch.
fn epoch_ms(t: SystemTime) -> u64 {
    (to_epoch_secs(t) * 1000.0).round() as u64
}

/// What the face caches of a token: its id, the access token, how many ms it is handed
/// out without asking (`f`, null: until invalidated), when it expires (`x`, ms since
/// 1970) and, when asked, every field the server sent (`j`).
fn descriptor(
    token: &TokenResponse,
    fresh: Option<Duration>,
    expires: Option<SystemTime>,
    whole: bool,
) -> String {
    let number = |n: Option<u64>| n.map_or_else(|| "null".to_owned(), |n| n.to_string());
    let access = serde_json::to_string(token.access_token()).unwrap_or_default();
    let mut text = format!(
        r#"{{"id":{},"a":{access},"f":{},"x":{}"#,
        token.id(),
        number(fresh.map(|d| d.as_millis() as u64)),
        number(expires.map(epoch_ms)),
    );
    if whole {
        text.push_str(r#","j":"#);
        text.push_str(token.json());
    }
    text.push('}');
    text
}

fn describe(core: &TokenManager, token: &TokenResponse, whole: bool) -> String {
    let (fresh, life) = core.fresh_for(token);
    descriptor(token, fresh, life.expires, whole)
}

/// The event as the face receives it: what `onEvent` sees, and for a new token its
/// descriptor (`d`). None for an event nobody listens to.
fn event_text(event: &ManagerEvent, everything: bool) -> Option<String> {
    use ManagerEvent as E;
    let value = match event {
        E::Token {
            grant, expires_at, ..
        } => {
            json!({ "type": "token", "grant": grant.as_str(), "expiresAt": expires_at.map(epoch_ms) })
        }
        E::Shared { expires_at, .. } => {
            json!({ "type": "shared", "expiresAt": expires_at.map(epoch_ms) })
        }
        E::Invalidated { id } => json!({ "type": "invalidated", "id": id }),
        _ if !everything => return None,
        E::Request { grant, attempt } => {
            json!({ "type": "request", "grant": grant.as_str(), "attempt": attempt })
        }
        E::Retry {
            attempt,
            delay,
            error,
        } => {
            let mut v = json!({ "type": "retry", "attempt": attempt, "delayMs": delay.as_millis() as u64, "code": code(error) });
            if let Some(status) = error.status() {
                v["status"] = json!(status);
            }
            v
        }
        E::Fallback { error } => {
            json!({ "type": "fallback", "from": "refresh_token", "to": "password", "code": code(error) })
        }
        E::Refused { grant, error } => {
            let oauth = match error {
                AuthError::Auth { error, .. } => Some(error.as_str()),
                _ => None,
            };
            json!({ "type": "refused", "grant": grant.as_str(), "status": error.status(), "error": oauth })
        }
        E::Cooldown { until } => json!({ "type": "cooldown", "untilMs": epoch_ms(*until) }),
        E::StoreUnavailable { error } => json!({ "type": "store-unavailable", "message": error.0 }),
        E::StoreAvailable => json!({ "type": "store-available" }),
        E::StoreDegraded { reason, detail } => {
            json!({ "type": "store-degraded", "reason": reason.reason(), "message": detail })
        }
        E::ApiRefused { until } => json!({ "type": "api-refused", "untilMs": epoch_ms(*until) }),
        E::ApiRetry {
            method,
            path,
            status,
            attempt,
            delay,
        } => {
            json!({ "type": "api-retry", "method": method, "path": path, "status": status, "attempt": attempt, "delayMs": delay.as_millis() as u64 })
        }
        E::StaleServed { error } => json!({ "type": "stale-served", "code": code(error) }),
    };
    let mut text = value.to_string();
    if let E::Token {
        token,
        expires_at,
        fresh,
        ..
    }
    | E::Shared {
        token,
        expires_at,
        fresh,
    } = event
    {
        text.pop();
        text.push_str(r#","d":"#);
        text.push_str(&descriptor(token, *fresh, *expires_at, true));
        text.push('}');
    }
    Some(text)
}

/// Posts the manager's events to its face, under the face's id for it.
fn listener(mailbox: Arc<Mailbox>, id: u32, everything: bool) -> Listener {
    Arc::new(move |event: ManagerEvent| {
        if let Some(text) = event_text(&event, everything) {
            mailbox.post(Posted {
                id,
                text,
                body: None,
            });
        }
    })
}

/// The core's token manager, for the face's `TokenManager`.
#[napi]
pub struct NativeManager {
    core: Arc<TokenManager>,
    channel: Channel,
    api_url: Url,
}

#[napi]
impl NativeManager {
    /// Throws an error whose message is an error text (`e{…}`) for options the core
    /// refuses; `listener` is the id the face gave this manager's events.
    #[napi(constructor, catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: &Env,
        channel: &Channel,
        listener_id: u32,
        config: String,
        username: String,
        password: Either<String, Buffer>,
        store_secret: Option<Either<String, Buffer>>,
        token: Option<String>,
    ) -> napi::Result<Self> {
        let built = (|| {
            let username = credential(Either::A(username), "options.username", MAX_CREDENTIAL_LEN)?;
            let password = credential(password, "options.password", MAX_CREDENTIAL_LEN)?;
            let restored = match token {
                Some(json) if json.len() > MAX_STORED_TOKEN => {
                    return Err(invalid_text(
                        "options.token",
                        &crate::core::error::Invalid::new("is larger than 1 MiB as JSON"),
                    ))
                }
                Some(json) => Some(
                    TokenResponse::from_stored(json)
                        .map_err(|r| invalid_text("options.token", &r))?,
                ),
                None => None,
            };
            let parts = ManagerJson::from_json(&config)?.build(username, password, store_secret)?;
            Ok((parts, restored))
        })();
        let (parts, restored) = built.map_err(napi::Error::from_reason)?;
        let mailbox = Arc::clone(&channel.mailbox);
        let events = listener(Arc::clone(&mailbox), listener_id, parts.events);
        let core = TokenManager::new(parts.config, restored, Some(events));
        Instance::get(env)?.adopt(&core);
        Ok(NativeManager {
            core,
            channel: Channel { mailbox },
            api_url: parts.api_url,
        })
    }

    /// A token for call `id`: its descriptor now (`v{…}`) when the cached one will do,
    /// an error text now, or undefined and the outcome posted later. `known` is the id of
    /// the token the face has; `whole` asks for every field.
    #[napi(catch_unwind)]
    pub fn token(
        &self,
        id: u32,
        known: f64,
        whole: bool,
        timeout_ms: Option<f64>,
    ) -> Option<String> {
        match self.core.subscribe() {
            Err(e) => Some(error_text(&e)),
            Ok(Ticket::Ready(token)) => {
                let whole = whole || token.id() as f64 != known;
                Some(value_text(&describe(&self.core, &token, whole)))
            }
            Ok(ticket) => {
                let core = Arc::clone(&self.core);
                let budget = self.budget(timeout_ms);
                let work = async move { budget.bound(ticket.wait()).await };
                self.channel.spawn(id, work, move |outcome| match outcome {
                    Ok(token) => (value_text(&describe(&core, &token, whole)), None),
                    Err(e) => (error_text(&e), None),
                });
                None
            }
        }
    }

    /// The descriptor of the current token, if there is one to use, without fetching.
    #[napi(catch_unwind)]
    pub fn current(&self) -> Option<String> {
        let (token, _) = self.core.cached()?;
        Some(value_text(&describe(&self.core, &token, true)))
    }

    /// Drops the current token (only if it is `stale`, when given).
    #[napi(catch_unwind)]
    pub fn invalidate(&self, stale: Option<String>) -> bool {
        self.core.invalidate(stale.as_deref())
    }

    /// Sends one request to the API with the token, as call `id`: for `manager.api`
    /// (`envelope`) the outcome is the `response` member's JSON, for `manager.fetch` the
    /// answer's status, headers and URL (its body through `takeBody`). An error text now
    /// for a request the core refuses; undefined when it was sent. Errors say which side
    /// failed (`endpoint`: the token or the API); `timeoutMs` bounds the whole call (the
    /// manager's `callTimeoutMs` when absent); only `manager.api` sends a read again.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        id: u32,
        envelope: bool,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<Buffer>,
        replayable: bool,
        follow: bool,
        timeout_ms: Option<f64>,
    ) -> Option<String> {
        let what = if envelope {
            "path"
        } else {
            "manager.fetch() input"
        };
        let body = body.map(|b| bytes::Bytes::copy_from_slice(&b));
        let parts = (method.as_str(), url.as_str(), headers.as_slice(), body);
        let request = match ApiRequest::build(&self.api_url, parts, replayable, follow) {
            Ok(r) => r,
            Err(reason) => return Some(invalid_text(what, &reason)),
        };
        let (core, options) = (Arc::clone(&self.core), self.core.request_options().clone());
        let budget = self.budget(timeout_ms);
        if envelope {
            // A HEAD answer has no body to hold an envelope: its status says it all.
            let head = request.method == reqwest::Method::HEAD;
            let work = async move {
                let response =
                    api::fetch(Arc::clone(&core), options, request, budget, true).await?;
                if head && (200..300).contains(&response.status) {
                    return Ok("null".to_owned());
                }
                api::envelope(&response).map_err(|e| (Side::Api, core.redact_secrets(e)))
            };
            self.channel.spawn_sided(id, work, |outcome| match outcome {
                Ok(json) => (value_text(&json), None),
                Err((side, e)) => (side_error_text(side, &e), None),
            });
        } else {
            let work = api::fetch(core, options, request, budget, false);
            self.channel.spawn_sided(id, work, |outcome| match outcome {
                Ok(mut response) => {
                    response.url.set_fragment(None);
                    // Header bytes as Latin-1, as fetch reads them.
                    let headers: Vec<(&str, String)> = response
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_bytes().iter().map(|&b| char::from(b)).collect()))
                        .collect();
                    let meta = json!({
                        "status": response.status,
                        "statusText": StatusCode::from_u16(response.status).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
                        "headers": headers,
                        "url": response.url.as_str(),
                        "redirected": response.redirected,
                    });
                    (value_text(&meta.to_string()), Some(std::mem::take(&mut response.body)))
                }
                Err((side, e)) => (side_error_text(side, &e), None),
            });
        }
        None
    }

    /// A call's budget: `timeout_ms`, or the manager's `callTimeoutMs`.
    fn budget(&self, timeout_ms: Option<f64>) -> CallBudget {
        let timeout = timeout_ms
            .filter(|ms| *ms > 0.0)
            .map_or(self.core.call_timeout(), |ms| {
                Duration::from_secs_f64(ms / 1000.0)
            });
        CallBudget::starting_now(timeout)
    }

    /// Closes the manager; the call `id` settles once its work has ended.
    #[napi(catch_unwind)]
    pub fn close(&self, id: u32) {
        let closing = self.core.close();
        let work = async move {
            closing.await;
            Ok::<_, AuthError>("null".to_owned())
        };
        self.channel.spawn(id, work, json_outcome);
    }
}
