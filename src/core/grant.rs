//! The token request: the form fields of the password and refresh_token grants, their
//! multipart encoding, and how an answer is judged.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde_json::Value;

use super::client::{self, RawResponse, RequestOptions};
use super::error::{scrub, truncate_utf8, AuthError, HTTP_BODY_EXCERPT};
use super::secret::{Secret, WipedBytes};
use super::token::TokenResponse;

/// Which grant, without its secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantKind {
    Password,
    RefreshToken,
}

impl GrantKind {
    /// The OAuth `grant_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Password => "password",
            GrantKind::RefreshToken => "refresh_token",
        }
    }
}

/// What the client offers in exchange for a token.
#[derive(Debug)]
pub enum Grant {
    Password { username: Secret, password: Secret },
    RefreshToken { refresh_token: Secret },
}

impl Grant {
    fn fields(&self, refresh: bool) -> Vec<(&'static str, &str)> {
        let refresh = ("refresh", if refresh { "yes" } else { "no" });
        match self {
            Grant::Password { username, password } => vec![
                ("grant_type", "password"),
                ("username", username.expose()),
                ("password", password.expose()),
                refresh,
            ],
            Grant::RefreshToken { refresh_token } => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
                refresh,
            ],
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Grant::Password { password, .. } => vec![password.expose()],
            Grant::RefreshToken { refresh_token } => vec![refresh_token.expose()],
        }
    }
}

/// Sends the grant and returns the token, or the error with every secret of the grant
/// scrubbed from it.
pub async fn request_token(
    grant: &Grant,
    opts: &RequestOptions,
) -> Result<TokenResponse, AuthError> {
    let (content_type, body) = encode_multipart(&grant.fields(opts.refresh));
    let result = match client::post(opts, &content_type, body).await {
        Ok(raw) => judge(raw, &grant.secrets()),
        Err(e) => Err(e),
    };
    result.map_err(|e| e.redact(&grant.secrets()))
}

/// Turns an answer into a token or the error the design table names for it.
fn judge(raw: RawResponse, secrets: &[&str]) -> Result<TokenResponse, AuthError> {
    let status = raw.status;
    if (200..300).contains(&status) {
        if raw.over_cap {
            return Err(AuthError::Response {
                status,
                reason: format!("a body over {} bytes", client::MAX_BODY),
            });
        }
        return TokenResponse::from_body(status, raw.body);
    }
    if (400..500).contains(&status) {
        if let Some(e) = oauth_error(status, &raw.body, raw.retry_after, secrets) {
            return Err(e);
        }
    }
    let mut text = String::from_utf8_lossy(&raw.body).into_owned();
    scrub(&mut text, secrets);
    Err(AuthError::Http {
        status,
        body: truncate_utf8(&text, HTTP_BODY_EXCERPT).to_owned(),
        retry_after: raw.retry_after,
    })
}

/// An RFC 6749 error body: `{"error": "...", "error_description": "..."}`.
fn oauth_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    secrets: &[&str],
) -> Option<AuthError> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let error = map.get("error")?.as_str()?;
    // OAuth error codes are lower-case words joined by '_'; Spring's own 404 page has
    // `"error": "Not Found"`, which is not a refusal of the grant.
    if error.is_empty() || !error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    // Servers echo what they were sent: scrubbed first, so no cut can keep part of it.
    let description = map
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| {
            let mut d = d.to_owned();
            scrub(&mut d, secrets);
            truncate_utf8(&d, HTTP_BODY_EXCERPT).to_owned()
        });
    Some(AuthError::Auth {
        status,
        error: truncate_utf8(error, 256).to_owned(),
        error_description: description,
        retry_after,
    })
}

/// `multipart/form-data`, as Sonetel's own sample sends it. The buffer holds the
/// credentials, so it is wiped once sent.
fn encode_multipart(fields: &[(&str, &str)]) -> (String, WipedBytes) {
    let boundary = loop {
        let b = random_boundary();
        if fields.iter().all(|(_, v)| !v.contains(&b)) {
            break b;
        }
    };
    let size: usize = fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + boundary.len() + 64)
        .sum();
    let mut body = Vec::with_capacity(size + boundary.len() + 8);
    for (name, value) in fields {
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b"\"\r\n\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    (
        format!("multipart/form-data; boundary={boundary}"),
        WipedBytes(body),
    )
}

fn random_boundary() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    let a = h.finish();
    h.write_u64(a);
    format!("----sonetel-auth-{a:016x}{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_layout() {
        let (ct, body) = encode_multipart(&[("grant_type", "password"), ("refresh", "yes")]);
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body.0.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"refresh\"\r\n\r\nyes\r\n--{boundary}--\r\n"
            )
        );
    }

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
            over_cap: false,
            headers: None,
        }
    }

    #[test]
    fn a_long_echoed_secret_is_scrubbed_before_the_cut() {
        let secret = format!("eyJ.{}.sig", "A".repeat(1500));
        let body = format!(
            r#"{{"error":"invalid_grant","error_description":"Invalid refresh token: {secret}"}}"#
        );
        let AuthError::Auth {
            error_description, ..
        } = judge(raw(400, &body), &[&secret]).unwrap_err()
        else {
            panic!("not a refusal")
        };
        assert_eq!(
            error_description.as_deref(),
            Some("Invalid refresh token: [redacted]")
        );
        let page = format!("{}{secret}", "x".repeat(1020));
        let AuthError::Http { body, .. } = judge(raw(500, &page), &[&secret]).unwrap_err() else {
            panic!("not an HTTP error")
        };
        assert!(!body.contains("AAAA"));
    }

    #[test]
    fn judging_answers() {
        let kind = |s, b| match judge(raw(s, b), &[]).unwrap_err() {
            AuthError::Auth { .. } => "refused",
            AuthError::Http { .. } => "http",
            AuthError::Response { .. } => "response",
            e => panic!("unexpected {e:?}"),
        };
        assert_eq!(kind(400, r#"{"error":"invalid_grant"}"#), "refused");
        assert_eq!(kind(401, r#"{"error":"unauthorized"}"#), "refused");
        assert_eq!(kind(400, "<html>"), "http");
        assert_eq!(kind(404, r#"{"error":"Not Found","status":404}"#), "http");
        assert_eq!(kind(500, r#"{"error":"server_error"}"#), "http");
        assert_eq!(kind(307, ""), "http");
        assert_eq!(kind(200, "[]"), "response");
        assert!(judge(raw(200, r#"{"access_token":"a"}"#), &[]).is_ok());
    }
}
