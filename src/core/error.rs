//! The core's errors: what kind of failure happened, in plain Rust terms. The binding
//! layer gives each kind its stable JavaScript `code`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// How much of an unexpected error body is kept for the caller.
pub const HTTP_BODY_EXCERPT: usize = 1024;

/// A value the core refuses, with the reason. The caller says which value it was: the
/// core does not know what the user called it.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(reason: impl Into<String>) -> Self {
        Invalid(reason.into())
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything that can go wrong while getting a token.
#[derive(Clone, PartialEq)]
pub enum AuthError {
    /// The server refused the grant: a 4xx whose JSON body carries an OAuth `error`.
    /// With status 408 or 429 it is a "not now", not a refusal of the credentials.
    Auth {
        status: u16,
        error: String,
        error_description: Option<String>,
        /// From a `Retry-After` header, when the server sent one we could read.
        retry_after: Option<Duration>,
    },
    /// A token manager's password was refused a short while ago, and it will not send it
    /// again before `remaining` has passed: `refusal` is what the server said then.
    CoolingDown {
        refusal: Box<AuthError>,
        remaining: Duration,
    },
    /// Any other non-2xx answer.
    Http {
        status: u16,
        body: String,
        /// From a `Retry-After` header, when the server sent one we could read.
        retry_after: Option<Duration>,
    },
    /// A 2xx whose body is not a usable token response (or API answer).
    Response { status: u16, reason: String },
    /// Sonetel's REST API answered `{"status":"failed", "response": {code, detail}}`,
    /// whatever the HTTP status.
    Api {
        status: u16,
        code: Option<String>,
        detail: Option<String>,
        /// From a `Retry-After` header, when the server sent one we could read.
        retry_after: Option<Duration>,
    },
    /// One request's deadline (`timeoutMs`) passed.
    Timeout { timeout: Duration },
    /// A whole call's deadline passed: its token, its requests and its retries together.
    Deadline { timeout: Duration },
    /// DNS, connect, TLS, reset.
    Network(NetworkError),
    /// The caller's signal fired.
    Aborted,
    /// The request set-up (CA bundle, proxy) was accepted but could not be used.
    Config(String),
    /// A bug in this library (a caught panic).
    Internal(String),
    /// The token manager was closed.
    Closed,
}

/// What kind of network failure it was, as far as the error chain tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    ConnectionRefused,
    HostNotFound,
    /// The resolver failed for now (no answer, server failure).
    DnsTemporary,
    ConnectionReset,
    TimedOut,
    HostUnreachable,
    NetworkUnreachable,
    CertExpired,
    CertNotYetValid,
    /// Signed by no root we trust.
    CertUnknownIssuer,
    /// Not issued for the host name asked for.
    CertWrongName,
    CertBadSignature,
    CertRevoked,
    /// Any other TLS failure.
    Tls,
    Other,
}

/// A network failure: its message (host and error chain), its kind, and where it was
/// going. `dns` tells a failed look-up from a failed connection.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkError {
    pub message: String,
    pub kind: NetKind,
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl NetworkError {
    pub fn new(message: impl Into<String>) -> Self {
        NetworkError {
            message: message.into(),
            kind: NetKind::Other,
            host: None,
            port: None,
        }
    }
}

impl AuthError {
    /// Worth trying again later: the failure says nothing about the credentials. 408,
    /// 429 and 5xx are transient whatever their body says.
    pub fn is_transient(&self) -> bool {
        let transient_status = |s: u16| s == 408 || s == 429 || (500..600).contains(&s);
        match self {
            AuthError::Network(_) | AuthError::Timeout { .. } | AuthError::Deadline { .. } => true,
            AuthError::Http { status, .. } | AuthError::Auth { status, .. } => {
                transient_status(*status)
            }
            _ => false,
        }
    }

    /// The server said no to the credentials themselves (not "not now").
    pub fn is_refusal(&self) -> bool {
        matches!(self, AuthError::Auth { .. }) && !self.is_transient()
    }

    /// The HTTP status, for the variants that have one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AuthError::Auth { status, .. }
            | AuthError::Http { status, .. }
            | AuthError::Response { status, .. }
            | AuthError::Api { status, .. } => Some(*status),
            AuthError::CoolingDown { refusal, .. } => refusal.status(),
            _ => None,
        }
    }

    /// How long the server asked us to wait, or how long a cool-down has left.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Auth { retry_after, .. }
            | AuthError::Http { retry_after, .. }
            | AuthError::Api { retry_after, .. } => *retry_after,
            AuthError::CoolingDown { remaining, .. } => Some(*remaining),
            _ => None,
        }
    }

    /// Replaces every occurrence of each secret in the texts this error carries.
    /// Servers echo what they were sent (Spring's "Invalid refresh token: <token>").
    pub fn redact(mut self, secrets: &[&str]) -> Self {
        let scrub = |text: &mut String| scrub(text, secrets);
        match &mut self {
            AuthError::Auth {
                error,
                error_description,
                ..
            } => {
                scrub(error);
                if let Some(d) = error_description {
                    scrub(d);
                }
            }
            AuthError::CoolingDown { refusal, .. } => {
                let inner = std::mem::replace(refusal.as_mut(), AuthError::Aborted);
                **refusal = inner.redact(secrets);
            }
            AuthError::Http { body, .. } => scrub(body),
            AuthError::Api { code, detail, .. } => {
                for text in [code, detail].into_iter().flatten() {
                    scrub(text);
                }
            }
            AuthError::Network(NetworkError { message: m, .. })
            | AuthError::Response { reason: m, .. } => scrub(m),
            _ => {}
        }
        self
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Auth {
                status,
                error,
                error_description,
                ..
            } => {
                if *status == 429 || *status == 408 {
                    write!(f, "Sonetel asked to try later ({status} {error})")?;
                } else {
                    write!(f, "Sonetel refused the grant ({status} {error})")?;
                }
                match error_description {
                    Some(d) if !d.is_empty() => write!(f, ": {}", mask_emails(d)),
                    _ => Ok(()),
                }
            }
            AuthError::CoolingDown { refusal, remaining } => write!(
                f,
                "{refusal}; the password is not sent again for another {} s",
                remaining.as_secs().max(1)
            ),
            AuthError::Http { status, .. } => write!(f, "Sonetel answered HTTP {status}"),
            AuthError::Response { status, reason } => {
                write!(f, "Sonetel answered HTTP {status} with {reason}")
            }
            AuthError::Api {
                status,
                code,
                detail,
                ..
            } => {
                write!(f, "Sonetel's API answered \"failed\" (HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, ", {}", mask_emails(code))?;
                }
                f.write_str(")")?;
                match detail {
                    Some(d) if !d.is_empty() => write!(f, ": {}", mask_emails(d)),
                    _ => Ok(()),
                }
            }
            AuthError::Timeout { timeout } => {
                write!(f, "no complete answer within {} ms", timeout.as_millis())
            }
            AuthError::Deadline { timeout } => write!(
                f,
                "the call did not finish within its {} ms deadline",
                timeout.as_millis()
            ),
            AuthError::Network(e) => write!(f, "network error: {}", e.message),
            AuthError::Aborted => f.write_str("The operation was aborted"),
            AuthError::Config(m) => f.write_str(m),
            AuthError::Internal(m) => write!(f, "internal error in sonetel-auth: {m}"),
            AuthError::Closed => f.write_str("the token manager is closed"),
        }
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthError({self})")
    }
}

impl std::error::Error for AuthError {}

/// Replaces each secret in `text` with `[redacted]`, as it is and in the forms a server
/// may echo it in: URL-encoded, HTML-escaped, JSON-escaped. Secrets under 4 characters
/// are left alone (replacing them would garble the text and hide little). Call it before
/// cutting a text short, or the cut could keep the start of a secret.
pub fn scrub(text: &mut String, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        let html = secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        let quoted = serde_json::to_string(secret).unwrap_or_default();
        let json = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or_default()
            .to_owned();
        for form in [secret.to_string(), form, percent, html, json] {
            if !form.is_empty() && text.contains(&form) {
                *text = text.replace(&form, "[redacted]");
            }
        }
    }
}

/// `text` with each e-mail address in it replaced by `[e-mail]`. Messages end up in logs;
/// servers name the user they refused ("User with name who@example.com not found"). The
/// server's own text stays available, unmasked, in the error's properties.
pub fn mask_emails(text: &str) -> Cow<'_, str> {
    const LOCAL_PUNCT: &str = ".!#$%&'*+/=?^_`{|}~-";
    // The forms of `@` a server may echo an address in: as is, URL-encoded, HTML-escaped.
    const ATS: [&str; 4] = ["@", "%40", "&#64;", "&#x40;"];
    let is_local = |c: char| c.is_alphanumeric() || LOCAL_PUNCT.contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || c == '-' || c == '.';
    // The length of the form of `@` that starts `s`, if one does (case aside).
    let at_sign = |s: &[u8]| {
        ATS.iter()
            .find(|at| s.len() >= at.len() && s[..at.len()].eq_ignore_ascii_case(at.as_bytes()))
            .map(|at| at.len())
    };
    // One pass: `copied` is how much of `text` is in `out`; `floor`, where the text after
    // the last `@` begins (a local part never reaches back past it).
    let bytes = text.as_bytes();
    let mut out = String::new();
    let (mut copied, mut floor, mut i) = (0, 0, 0);
    while i < bytes.len() {
        let Some(at_len) = at_sign(&bytes[i..]) else {
            i += 1;
            continue;
        };
        // Every form starts with an ASCII byte, so `i` is on a character boundary.
        let start = text[floor..i]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_local(c))
            .last()
            .map_or(i, |(j, _)| floor + j);
        let after = &text[i + at_len..];
        let domain_len = after
            .char_indices()
            .find(|&(_, c)| !is_domain(c))
            .map_or(after.len(), |(j, _)| j);
        // A sentence's full stop is not part of the domain.
        let domain = after[..domain_len].trim_end_matches('.');
        i += at_len;
        if start < i - at_len && domain.contains('.') && !domain.starts_with('.') {
            out.push_str(&text[copied..start]);
            out.push_str("[e-mail]");
            i += domain.len();
            copied = i;
        }
        floor = i;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_mask_email_addresses_and_properties_keep_them() {
        assert_eq!(
            mask_emails("User with name who+x@example.co.uk not found."),
            "User with name [e-mail] not found."
        );
        assert_eq!(mask_emails("a@b.c and d@e.f"), "[e-mail] and [e-mail]");
        assert_eq!(
            mask_emails("@home, user@localhost, @@"),
            "@home, user@localhost, @@"
        );
        assert_eq!(mask_emails("å@ö.se"), "[e-mail]");
        assert_eq!(
            mask_emails("x%40y.com, a&#64;b.org and c&#X40;d.net"),
            "[e-mail], [e-mail] and [e-mail]"
        );
        assert_eq!(mask_emails("a%40b%40c.com"), "a%40[e-mail]");
        let many = "@x ".repeat(100_000);
        assert_eq!(mask_emails(&many), many.as_str());
        let e = AuthError::Auth {
            status: 401,
            error: "unauthorized".into(),
            error_description: Some("User with name who@example.com not found".into()),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "Sonetel refused the grant (401 unauthorized): User with name [e-mail] not found"
        );
        match e {
            AuthError::Auth {
                error_description, ..
            } => assert_eq!(
                error_description.as_deref(),
                Some("User with name who@example.com not found")
            ),
            _ => unreachable!(),
        }
    }

    #[test]
    fn redact_replaces_echoed_secrets() {
        let e = AuthError::Auth {
            status: 400,
            error: "invalid_grant".into(),
            error_description: Some("Invalid refresh token: abc.def.ghi".into()),
            retry_after: None,
        }
        .redact(&["abc.def.ghi"]);
        assert_eq!(
            e.to_string(),
            "Sonetel refused the grant (400 invalid_grant): Invalid refresh token: [redacted]"
        );
    }

    #[test]
    fn scrub_finds_encoded_echoes() {
        let secret = "Zq&<Secret> \"x";
        let mut text = format!(
            "a {secret} b ZqW%26%3CSecret%3E+%22x c Zq%26%3CSecret%3E%20%22x d Zq&amp;&lt;Secret&gt; &quot;x e Zq&<Secret> \\\"x"
        )
        .replace("ZqW", "Zq");
        scrub(&mut text, &[secret]);
        assert_eq!(
            text,
            "a [redacted] b [redacted] c [redacted] d [redacted] e [redacted]"
        );
        let mut short = "abc".to_string();
        scrub(&mut short, &["abc"]);
        assert_eq!(short, "abc");
    }

    #[test]
    fn transient_classification() {
        let http = |status| AuthError::Http {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(http(503).is_transient());
        assert!(http(429).is_transient());
        assert!(!http(404).is_transient());
        let oauth = |status| AuthError::Auth {
            status,
            error: "x".into(),
            error_description: None,
            retry_after: None,
        };
        assert!(!oauth(400).is_transient());
        assert!(oauth(400).is_refusal());
        for status in [408, 429] {
            assert!(oauth(status).is_transient(), "{status}");
            assert!(!oauth(status).is_refusal(), "{status}");
            assert!(http(status).is_transient(), "{status}");
        }
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
