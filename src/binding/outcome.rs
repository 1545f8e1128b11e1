//! How results cross to JavaScript: one string each, `v` and a value as JSON text, or `e`
//! and an error descriptor the face turns into its error object (`src/face/errors.js`).
//! This is where each kind of core failure gets its stable `code`.

use serde_json::{json, Map, Value};

use crate::core::api::Side;
use crate::core::error::{AuthError, Invalid, NetworkError};

/// A value: `v` and its JSON text.
pub fn value_text(json: &str) -> String {
    let mut text = String::with_capacity(json.len() + 1);
    text.push('v');
    text.push_str(json);
    text
}

/// The stable JavaScript `code` of a core failure.
pub fn code(e: &AuthError) -> &'static str {
    match e {
        AuthError::Auth { .. } | AuthError::CoolingDown { .. } => "ERR_SONETEL_AUTH",
        AuthError::Http { .. } => "ERR_SONETEL_HTTP",
        AuthError::Response { .. } => "ERR_SONETEL_RESPONSE",
        AuthError::Api { .. } => "ERR_SONETEL_API",
        AuthError::Timeout { .. } | AuthError::Deadline { .. } => "ERR_SONETEL_TIMEOUT",
        AuthError::Network(_) => "ERR_SONETEL_NETWORK",
        AuthError::Aborted => "ABORT_ERR",
        AuthError::Config(_) => "ERR_INVALID_ARG_VALUE",
        AuthError::Internal(_) => "ERR_SONETEL_INTERNAL",
        AuthError::Closed => "ERR_SONETEL_CLOSED",
    }
}

/// The descriptor of a core failure: `code`, `message` and the properties of its kind.
pub fn error_json(e: &AuthError) -> Value {
    let message = match e {
        AuthError::CoolingDown { .. } => format!("{e} (authFailureCooldownMs)"),
        e => e.to_string(),
    };
    let mut d = Map::new();
    d.insert("code".into(), code(e).into());
    d.insert("message".into(), message.into());
    if let Some(status) = e.status() {
        d.insert("status".into(), status.into());
    }
    let refusal = match e {
        AuthError::CoolingDown { refusal, .. } => refusal.as_ref(),
        e => e,
    };
    if let AuthError::Auth {
        error,
        error_description,
        ..
    } = refusal
    {
        d.insert("error".into(), error.as_str().into());
        if let Some(text) = error_description {
            d.insert("error_description".into(), text.as_str().into());
        }
    }
    if let Some(wait) = e.retry_after() {
        d.insert("retryAfterMs".into(), (wait.as_millis() as u64).into());
    }
    match e {
        AuthError::Http { body, .. } => {
            d.insert("body".into(), body.as_str().into());
        }
        AuthError::Api { code, detail, .. } => {
            if let Some(code) = code {
                d.insert("apiCode".into(), code.as_str().into());
            }
            if let Some(detail) = detail {
                d.insert("detail".into(), detail.as_str().into());
            }
        }
        AuthError::Network(n) => {
            d.insert("cause".into(), network_cause(n));
        }
        _ => {}
    }
    Value::Object(d)
}

/// What the face needs for a network error's `cause` (it names the kind as Node does).
fn network_cause(n: &NetworkError) -> Value {
    json!({ "kind": format!("{:?}", n.kind), "hostname": n.host, "port": n.port, "message": n.message })
}

/// `e` and the descriptor of a core failure.
pub fn error_text(e: &AuthError) -> String {
    format!("e{}", error_json(e))
}

/// `e` and the descriptor of a failed API call, with the side that failed (`endpoint`:
/// `token` or `api`).
pub fn side_error_text(side: Side, e: &AuthError) -> String {
    let mut d = error_json(e);
    d["endpoint"] = side.as_str().into();
    format!("e{d}")
}

/// `e` and the descriptor of an argument the core refused: `what` names it as the caller
/// wrote it (`options.tokenUrl`).
pub fn invalid_text(what: &str, reason: &Invalid) -> String {
    format!(
        "e{}",
        json!({ "code": "ERR_INVALID_ARG_VALUE", "message": format!("{what} {reason}") })
    )
}

/// The text of a call's outcome whose value is already JSON text.
pub fn json_outcome(outcome: Result<String, AuthError>) -> (String, Option<Vec<u8>>) {
    match outcome {
        Ok(json) => (value_text(&json), None),
        Err(e) => (error_text(&e), None),
    }
}
