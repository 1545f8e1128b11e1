//! The token response (every field the server sent, kept) and JWT payload decoding.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::error::{AuthError, Invalid};

/// Longest string we treat as a possible JWT; real Sonetel tokens are about 1 KiB.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A successful answer of the token endpoint: the JSON text as the server sent it (every
/// field kept, for JavaScript), and the few fields the core itself needs.
#[derive(Clone)]
pub struct TokenResponse {
    json: String,
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<f64>,
    /// When this process received it (monotonic, so a step of the wall clock cannot move
    /// it); None for a token an app stored and gave back.
    received_at: Option<Instant>,
    /// Worked out on first use: most callers never ask, and it costs a JWT decode.
    times: OnceLock<Times>,
    /// Unique in the process and growing: a later token has a larger id.
    id: u64,
}

/// What a token says about time. `exp` and `iat` are JWT claims, in seconds since the
/// epoch by the server's clock; `expires_in` is the server's stated lifetime, kept only
/// for an answer received in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Times {
    pub exp: Option<f64>,
    pub iat: Option<f64>,
    pub expires_in: Option<f64>,
}

/// The fields the core reads; serde skips the rest without building them.
#[derive(Deserialize)]
struct Known {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl TokenResponse {
    /// Parses a 2xx body: a JSON object with a string `access_token`.
    pub fn from_body(status: u16, body: Vec<u8>) -> Result<Self, AuthError> {
        let bad = |reason: &str| AuthError::Response {
            status,
            reason: reason.to_owned(),
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("an empty body"));
        }
        let text = String::from_utf8(body).map_err(|_| bad("a body that is not UTF-8"))?;
        Self::from_json(text).map_err(|mut text| {
            // Only on failure: say which way the body is wrong.
            let error = match serde_json::from_str::<Value>(&text) {
                Err(_) => bad("a body that is not valid JSON"),
                Ok(Value::Object(o)) if o.get("access_token").is_some_and(Value::is_string) => {
                    bad("an access_token that an Authorization header cannot carry")
                }
                Ok(Value::Object(_)) => bad("JSON that lacks a string access_token"),
                Ok(_) => bad("JSON that is not an object"),
            };
            text.zeroize();
            error
        })
    }

    /// Accepts the JSON text of an object with a non-empty string `access_token`, as an
    /// app stored it. Only its JWT `exp` says how long it lives: when it was received is
    /// not known, so its `expires_in` means nothing any more.
    pub fn from_stored(json: String) -> Result<Self, Invalid> {
        let mut token = Self::from_json(json).map_err(|mut json| {
            json.zeroize();
            Invalid::new("must be a JSON object with a non-empty string access_token (printable ASCII), nested at most 32 deep")
        })?;
        token.expires_in = None;
        token.received_at = None;
        Ok(token)
    }

    /// The token in `json`, or `json` back when it is not one.
    fn from_json(json: String) -> Result<Self, String> {
        // serde would also read a struct from a JSON array; only an object is a token.
        if !json.trim_start().starts_with('{') || too_deep(&json, MAX_TOKEN_DEPTH) {
            return Err(json);
        }
        let known: Known = match serde_json::from_str(&json) {
            Ok(k) => k,
            Err(_) => return Err(json),
        };
        // It goes into an Authorization header: printable ASCII, no spaces or controls.
        if known.access_token.is_empty()
            || !known.access_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(json);
        }
        Ok(TokenResponse {
            json,
            access_token: known.access_token,
            refresh_token: match known.refresh_token {
                Some(Value::String(t)) if !t.is_empty() => Some(t),
                _ => None,
            },
            expires_in: known.expires_in.as_ref().and_then(Value::as_f64),
            received_at: Some(Instant::now()),
            times: OnceLock::new(),
            id: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
        })
    }

    /// Which token this is: unique in the process, larger for a later one.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// Every field as JSON text, as the server sent it.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Keeps a refresh token from an earlier answer when a refresh did not send a new one.
    pub fn inherit_refresh_token(&mut self, previous: &TokenResponse) {
        let (None, Some(rt)) = (&self.refresh_token, previous.refresh_token()) else {
            return;
        };
        if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&self.json) {
            fields.insert("refresh_token".into(), Value::String(rt.to_owned()));
            let mut json = Value::Object(fields).to_string();
            std::mem::swap(&mut self.json, &mut json);
            json.zeroize();
            self.refresh_token = Some(rt.to_owned());
        }
    }

    /// When this process received the token, by the wall clock as it reads now (so
    /// `received_at() + lifetime` stays right after the clock is stepped); None for one
    /// an app stored and gave back.
    pub fn received_at(&self) -> Option<SystemTime> {
        let elapsed = self.received_at?.elapsed();
        Some(SystemTime::now().checked_sub(elapsed).unwrap_or(UNIX_EPOCH))
    }

    /// The token's `exp`, `iat` and `expires_in`, finite and not negative.
    pub fn times(&self) -> Times {
        *self.times.get_or_init(|| {
            let claims = decode_claims(&self.access_token).ok();
            let claim = |name: &str| {
                claims
                    .as_ref()
                    .and_then(|c| c.get(name)?.as_f64())
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            Times {
                exp: claim("exp"),
                iat: claim("iat"),
                expires_in: self.expires_in.filter(|v| v.is_finite() && *v >= 0.0),
            }
        })
    }

    /// The refresh token's JWT `exp`, by the server's clock, if it says.
    /// A claim of the access token (a JWT), if it has it.
    pub fn claim(&self, name: &str) -> Option<Value> {
        decode_claims(&self.access_token).ok()?.remove(name)
    }

    pub fn refresh_exp(&self) -> Option<f64> {
        let exp = decode_claims(self.refresh_token()?)
            .ok()?
            .get("exp")?
            .as_f64()?;
        (exp.is_finite() && exp >= 0.0).then_some(exp)
    }
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        self.json.zeroize();
        self.access_token.zeroize();
        if let Some(t) = &mut self.refresh_token {
            t.zeroize();
        }
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("times", &self.times())
            .finish()
    }
}

/// Deepest nesting of objects and arrays a token answer may have; real ones have 2.
const MAX_TOKEN_DEPTH: usize = 32;

/// Whether `json` nests objects and arrays deeper than `max`. serde skips the fields it
/// does not need without a depth limit, so the limit is kept here.
fn too_deep(json: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in json.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Seconds since the epoch as a point in time; far-future values are clamped.
pub fn epoch_secs(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(secs.clamp(0.0, 1e11))
}

/// A point in time as seconds since the epoch.
pub fn to_epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Decodes the payload of a JWT (`header.payload.signature`) without checking its signature.
pub fn decode_claims(token: &str) -> Result<Map<String, Value>, Invalid> {
    let payload = payload_json(token)?;
    match serde_json::from_str(&payload) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(Invalid::new("not a JWT: the payload is not a JSON object")),
    }
}

/// The payload of a JWT as JSON text, checked to be one JSON object. Nothing is verified.
pub fn payload_json(token: &str) -> Result<String, Invalid> {
    let not_jwt = |why: &str| Invalid(format!("not a JWT: {why}"));
    if token.len() > MAX_TOKEN_LEN {
        return Err(not_jwt("longer than 64 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt("expected three dot-separated parts"));
    };
    let decode = |part: &str, name: &str| {
        BASE64URL
            .decode(part)
            .map_err(|_| not_jwt(&format!("the {name} is not base64url")))
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| not_jwt("the header is not JSON"))?;
    if !header.is_object() {
        return Err(not_jwt("the header is not a JSON object"));
    }
    let payload = String::from_utf8(decode(payload, "payload")?)
        .map_err(|_| not_jwt("the payload is not UTF-8"))?;
    // Only an object: serde's depth limit also keeps a hostile nesting from going deep.
    let is_object = payload.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_ok();
    if !is_object {
        return Err(not_jwt("the payload is not a JSON object"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", b(r#"{"alg":"RS256"}"#), b(payload))
    }

    #[test]
    fn decodes_claims_and_times() {
        let t = jwt(r#"{"exp":2000000000,"iat":1999996400,"user_id":"u1","scope":["a"]}"#);
        let claims = decode_claims(&t).unwrap();
        assert_eq!(claims["user_id"], "u1");
        let body = format!(r#"{{"access_token":"{t}","expires_in":3599}}"#);
        let token = TokenResponse::from_body(200, body.into_bytes()).unwrap();
        assert_eq!(
            token.times(),
            Times {
                exp: Some(2e9),
                iat: Some(1_999_996_400.0),
                expires_in: Some(3599.0)
            }
        );
        assert!(token.received_at().is_some());
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.e30.x",
            &jwt("[1,2]"),
            &jwt("not json"),
            "e30.@@@.x",
            "\u{0}.\u{0}.\u{0}",
        ] {
            let err = decode_claims(bad).unwrap_err();
            assert!(err.0.starts_with("not a JWT"), "{bad:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every split of a few seeds and random-ish strings.
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for len in 0..400 {
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"eyJ0e30.-_=+/AZaz09\"{}:,"[(seed % 24) as usize] as char
                })
                .collect();
            let _ = decode_claims(&s);
        }
    }

    #[test]
    fn body_checks() {
        let err = |b: &str| TokenResponse::from_body(200, b.as_bytes().to_vec()).unwrap_err();
        assert!(matches!(err(""), AuthError::Response { .. }));
        assert!(matches!(err("{"), AuthError::Response { .. }));
        assert!(matches!(err("[]"), AuthError::Response { .. }));
        assert!(matches!(err(r#"["abc"]"#), AuthError::Response { .. }));
        assert!(matches!(
            err(r#"{"access_token":""}"#),
            AuthError::Response { .. }
        ));
        assert!(matches!(
            err(r#"{"access_token":5}"#),
            AuthError::Response { .. }
        ));
        for unfit in [
            r#"{"access_token":"a.b\r\nX: 1"}"#,
            r#"{"access_token":"a b"}"#,
            r#"{"access_token":"a\u0000"}"#,
        ] {
            let AuthError::Response { reason, .. } = err(unfit) else {
                panic!("{unfit}")
            };
            assert!(reason.contains("header"), "{reason}");
            assert!(TokenResponse::from_stored(unfit.into()).is_err(), "{unfit}");
        }
        let body = r#"{"access_token":"secret-x","extra":1}"#;
        let ok = TokenResponse::from_body(200, body.as_bytes().to_vec()).unwrap();
        assert_eq!(ok.json(), body);
        assert!(!format!("{ok:?}").contains("secret-x"));
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        let nested = |n: usize| {
            format!(
                r#"{{"access_token":"a","x":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(TokenResponse::from_stored(nested(20)).is_ok());
        assert!(TokenResponse::from_stored(nested(40)).is_err());
        // Brackets inside strings are text, not nesting.
        let text = format!(
            r#"{{"access_token":"a","x":"{}\"{}"}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(TokenResponse::from_stored(text).is_ok());
    }

    #[test]
    fn a_restored_token_forgets_when_and_how_long() {
        let t =
            TokenResponse::from_stored(r#"{"access_token":"opaque","expires_in":86400}"#.into())
                .unwrap();
        assert_eq!(t.times(), Times::default());
        assert_eq!(t.received_at(), None);
    }
}
