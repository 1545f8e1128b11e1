//! Calling Sonetel's REST API with a manager's token: requests stay on the API origin
//! (the token never goes anywhere else, not even through a redirect), the token is added
//! as a bearer header, a 401 is answered by one new token and one retry, and Sonetel's
//! envelope (`{"status":"success"|"failed","response":…}`) is read.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, LOCATION, USER_AGENT};
use reqwest::{Method, Url};
use serde_json::Value;

use super::client::{self, RequestOptions};
use super::error::{scrub, truncate_utf8, AuthError, Invalid, HTTP_BODY_EXCERPT};
use super::manager::{TokenManager, MAX_RETRY_DELAY};
use super::token::{decode_claims, TokenResponse};

pub const DEFAULT_API_URL: &str = "https://public-api.sonetel.com";
/// Largest API answer read; Sonetel's are JSON of a few KiB.
pub const MAX_API_BODY: usize = 16 * 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

/// One request to the API, checked.
#[derive(Debug)]
pub struct ApiRequest {
    pub method: Method,
    /// Absolute, on the API origin. `{acc_id}` and `{user_id}` in its path are filled from
    /// the claims of the token that is sent.
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The body can be sent again (not a stream): a 401 may be retried with a new token.
    pub replayable: bool,
    /// Follow redirects that stay on the API origin; others are handed back unfollowed.
    pub follow_redirects: bool,
}

/// Largest request body sent to the API; Sonetel's requests are small JSON.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
/// Headers that belong to the connection, not the caller (fetch forbids them too): a
/// Host of the caller's could route the token to another site on the API's server.
const CONNECTION_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A request's parts as the caller gave them: method, URL (or path), header names and
/// values in turn, body.
pub type Parts<'a> = (&'a str, &'a str, &'a [String], Option<Bytes>);

impl ApiRequest {
    /// Checks a request: on `base`'s origin, a valid method, valid headers (the
    /// connection's own are dropped), a body of at most [`MAX_REQUEST_BODY`].
    pub fn build(
        base: &Url,
        (method, url, headers, body): Parts,
        replayable: bool,
        follow_redirects: bool,
    ) -> Result<ApiRequest, Invalid> {
        let url = resolve(base, url)?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Invalid::new("has a method that is not valid"))?;
        let mut map = HeaderMap::new();
        for pair in headers.chunks(2) {
            let [name, value] = pair else { break };
            let bad = || Invalid::new(format!("has a header {name} that is not valid"));
            let name = HeaderName::try_from(name.as_str()).map_err(|_| bad())?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|_| bad())?;
            if !CONNECTION_HEADERS.contains(&name.as_str()) {
                map.append(name, value);
            }
        }
        if body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
            return Err(Invalid::new(format!(
                "has a body larger than {MAX_REQUEST_BODY} bytes"
            )));
        }
        Ok(ApiRequest {
            method,
            url,
            headers: map,
            body,
            replayable,
            follow_redirects,
        })
    }
}

/// The API's answer, as it came.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The URL that answered, after any redirect followed.
    pub url: Url,
    pub redirected: bool,
    /// The token that was sent: an API that echoes it must not put it in an error.
    pub token: Arc<TokenResponse>,
}

/// Whether two URLs share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// `input` (a path relative to `base`, or an absolute URL) as an absolute URL on the
/// API origin. Another origin, or a user name or password in the URL, is refused: the
/// token would go there.
pub fn resolve(base: &Url, input: &str) -> Result<Url, Invalid> {
    let url = base
        .join(input)
        .map_err(|_| Invalid::new("is not a valid URL or path"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new("must not carry a user name or password"));
    }
    // A blob: URL has its inner URL's origin, but is not a place to send a request.
    if url.scheme() != base.scheme() || !same_origin(&url, base) {
        return Err(Invalid::new(format!(
            "is not on the API origin {}: the token is only sent there",
            base.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

/// `{acc_id}` and `{user_id}` in the path, from the token's claims.
fn fill_claims(url: &Url, token: &TokenResponse) -> Result<Url, AuthError> {
    if !url.path().contains('{') && !url.path().contains("%7B") {
        return Ok(url.clone());
    }
    let claims = decode_claims(token.access_token()).unwrap_or_default();
    let mut path = url.path().replace("%7B", "{").replace("%7D", "}");
    for name in ["acc_id", "user_id"] {
        let placeholder = format!("{{{name}}}");
        if !path.contains(&placeholder) {
            continue;
        }
        let value = match claims.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(AuthError::Config(format!(
                    "the path names {placeholder}, but the token has no {name} claim"
                )))
            }
        };
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        path = path.replace(&placeholder, &encoded);
    }
    let mut filled = url.clone();
    filled.set_path(&path);
    Ok(filled)
}

/// Which side of a call failed: getting the token, or the API request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Token,
    Api,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Token => "token",
            Side::Api => "api",
        }
    }
}

/// A failed call: the error, and the side it came from.
pub type Failure = (Side, AuthError);

/// How one call may spend its time: everything (the token, each request, each wait
/// before a retry) ends by `deadline`, which is `timeout` after the call began.
#[derive(Clone, Copy, Debug)]
pub struct CallBudget {
    pub deadline: Instant,
    pub timeout: Duration,
}

impl CallBudget {
    pub fn starting_now(timeout: Duration) -> Self {
        CallBudget {
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    /// `work`, ended with [`AuthError::Deadline`] when the budget runs out first.
    pub async fn bound<T>(
        &self,
        work: impl Future<Output = Result<T, AuthError>>,
    ) -> Result<T, AuthError> {
        tokio::time::timeout_at(self.deadline.into(), work)
            .await
            .unwrap_or(Err(AuthError::Deadline {
                timeout: self.timeout,
            }))
    }
}

/// Statuses after which a read is sent again: Sonetel (or what stands before it) asks
/// for a moment.
const RETRIED_STATUSES: [u16; 2] = [429, 503];

/// Sends `request` with the manager's token, within `budget`. A 401 invalidates exactly
/// that token and retries once with a new one, when the body can be sent again; a 401 on
/// the new token too is handed back, and holds new tokens for that path for a while.
/// With `retry_reads`, a GET or HEAD answered 429 or 503 is sent again after the
/// server's `Retry-After` (else the manager's back-off), at most `retries` times and
/// only when the wait ends before the deadline; other methods are never sent twice.
pub async fn fetch(
    manager: Arc<TokenManager>,
    options: RequestOptions,
    request: ApiRequest,
    budget: CallBudget,
    retry_reads: bool,
) -> Result<ApiResponse, Failure> {
    let mut retried = false;
    let mut reads_retried = 0;
    let read = request.method == Method::GET || request.method == Method::HEAD;
    loop {
        let token = budget
            .bound(async { manager.subscribe()?.wait().await })
            .await
            .map_err(|e| (Side::Token, e))?;
        let api = |e| (Side::Api, e);
        let url = fill_claims(&request.url, &token).map_err(api)?;
        let response = budget
            .bound(send_following(&options, &request, url, token.clone()))
            .await
            .map_err(api)?;
        if response.status != 401 {
            manager.api_accepted(&token);
            if retry_reads && read && RETRIED_STATUSES.contains(&response.status) {
                if let Some(wait) = retry_wait(&manager, &response, reads_retried, &budget) {
                    reads_retried += 1;
                    manager.api_retry(
                        request.method.as_str(),
                        request.url.path(),
                        response.status,
                        reads_retried,
                        wait,
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(response);
        }
        // Whether or not this request can be sent again, the next one gets a new token;
        // unless the token just received to replace a refused one was refused too (see
        // `api_refused`, called first: it decides whether or not this one is retried).
        if manager.api_refused(request.url.path(), token.access_token(), retried)
            && !retried
            && request.replayable
        {
            retried = true;
            continue;
        }
        return Ok(response);
    }
}

/// How long to wait before sending a read again, or None when it is not sent again:
/// the retries are spent, or the wait the server asks for would not end in time.
fn retry_wait(
    manager: &TokenManager,
    response: &ApiResponse,
    retried: u32,
    budget: &CallBudget,
) -> Option<Duration> {
    if retried >= manager.retries() {
        return None;
    }
    let wait =
        client::retry_after(&response.headers).unwrap_or_else(|| manager.retry_backoff(retried));
    // Room for the request after the wait, too: a wait that ends at the deadline is wasted.
    (wait <= MAX_RETRY_DELAY && Instant::now() + wait < budget.deadline).then_some(wait)
}

/// One request with its redirects: followed while they stay on the origin (with the
/// method and body rules of `fetch`), handed back unfollowed when they do not. More than
/// [`MAX_REDIRECTS`] is an error, as a loop would be.
async fn send_following(
    options: &RequestOptions,
    request: &ApiRequest,
    mut url: Url,
    token: Arc<TokenResponse>,
) -> Result<ApiResponse, AuthError> {
    let origin = url.clone();
    let mut method = request.method.clone();
    let mut body = request.body.clone();
    let mut headers = request.headers.clone();
    let bearer =
        HeaderValue::try_from(format!("Bearer {}", token.access_token())).map_err(|_| {
            AuthError::Response {
                status: 200,
                reason: "an access token that is not a valid header value".into(),
            }
        })?;
    headers.insert(AUTHORIZATION, bearer);
    if !headers.contains_key(USER_AGENT) {
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("sonetel-auth/", env!("CARGO_PKG_VERSION"))),
        );
    }
    let mut redirected = false;
    for hop in 0..=MAX_REDIRECTS {
        let raw = client::send(
            options,
            method.clone(),
            &url,
            headers.clone(),
            body.clone(),
            MAX_API_BODY,
        )
        .await
        .map_err(|e| e.redact(&[token.access_token()]))?;
        if raw.over_cap {
            return Err(AuthError::Response {
                status: raw.status,
                reason: format!("a body over {MAX_API_BODY} bytes"),
            });
        }
        let answer_headers = raw.headers.unwrap_or_default();
        let next = request
            .follow_redirects
            .then(|| redirect_target(raw.status, &answer_headers, &url))
            .flatten()
            .filter(|target| same_origin(target, &origin));
        if next.is_some() && hop == MAX_REDIRECTS {
            return Err(AuthError::Response {
                status: raw.status,
                reason: format!("a redirect after {MAX_REDIRECTS} redirects"),
            });
        }
        let follow = match next {
            Some(target) => {
                let drop_body = raw.status == 303
                    || (matches!(raw.status, 301 | 302) && method == Method::POST);
                // A 307 or 308 sends the body again, which a stream cannot do.
                (drop_body || body.is_none() || request.replayable).then_some((target, drop_body))
            }
            None => None,
        };
        let Some((target, drop_body)) = follow else {
            return Ok(ApiResponse {
                status: raw.status,
                headers: answer_headers,
                body: raw.body,
                url,
                redirected,
                token,
            });
        };
        if drop_body {
            if method != Method::HEAD {
                method = Method::GET;
            }
            body = None;
            for name in [
                "content-type",
                "content-length",
                "content-encoding",
                "content-language",
                "content-location",
            ] {
                headers.remove(HeaderName::from_static(name));
            }
        }
        url = target;
        redirected = true;
    }
    unreachable!("the loop returns on its last hop")
}

fn redirect_target(status: u16, headers: &HeaderMap, base: &Url) -> Option<Url> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(LOCATION)?.to_str().ok()?;
    base.join(location).ok()
}

/// Sonetel's envelope: the `response` member of a `{"status":"success"}` body (as JSON
/// text), or the error the answer stands for: `Api` for `{"status":"failed"}` whatever
/// the HTTP status, `Http` for any other non-2xx, `Response` for a 2xx that is not an
/// envelope.
pub fn envelope(response: &ApiResponse) -> Result<String, AuthError> {
    let status = response.status;
    // Scrubbed before the cut, so no cut keeps the start of the token.
    let excerpt = |mut s: String| {
        scrub(&mut s, &[response.token.access_token()]);
        truncate_utf8(&s, HTTP_BODY_EXCERPT).to_owned()
    };
    let parsed = serde_json::from_slice::<Value>(&response.body).ok();
    let state = parsed
        .as_ref()
        .and_then(|v| v.get("status"))
        .and_then(Value::as_str);
    match (state, parsed.as_ref()) {
        (Some("failed"), Some(v)) => {
            let inner = v.get("response");
            let text = |name: &str| {
                inner
                    .and_then(|r| r.get(name))
                    .and_then(|c| match c {
                        Value::String(s) => Some(s.clone()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    })
                    .map(excerpt)
            };
            Err(AuthError::Api {
                status,
                code: text("code"),
                detail: text("detail"),
                retry_after: client::retry_after(&response.headers),
            })
        }
        (Some("success"), Some(v)) if (200..300).contains(&status) => Ok(v
            .get("response")
            .cloned()
            .unwrap_or(Value::Null)
            .to_string()),
        _ if !(200..300).contains(&status) => Err(AuthError::Http {
            status,
            body: excerpt(String::from_utf8_lossy(&response.body).into_owned()),
            retry_after: client::retry_after(&response.headers),
        }),
        _ => Err(AuthError::Response {
            status,
            reason: "a body that is not Sonetel's {\"status\", \"response\"} envelope".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_the_connection_headers_to_themselves() {
        let base = Url::parse("https://public-api.sonetel.com").unwrap();
        let headers: Vec<String> = [
            "host",
            "evil.example",
            "x-ok",
            "1",
            "Transfer-Encoding",
            "chunked",
        ]
        .map(String::from)
        .to_vec();
        let r = ApiRequest::build(&base, ("POST", "/x", &headers, None), true, true).unwrap();
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers["x-ok"], "1");
        let bad = vec!["bad name".to_owned(), "v".to_owned()];
        assert!(ApiRequest::build(&base, ("GET", "/x", &bad, None), true, true).is_err());
        assert!(ApiRequest::build(&base, ("GE T", "/x", &[], None), true, true).is_err());
        let big = Some(Bytes::from(vec![0u8; MAX_REQUEST_BODY + 1]));
        assert!(ApiRequest::build(&base, ("POST", "/x", &[], big), true, true).is_err());
    }

    #[test]
    fn paths_resolve_on_the_origin_only() {
        let base = Url::parse("https://public-api.sonetel.com").unwrap();
        assert_eq!(
            resolve(&base, "/account/1").unwrap().as_str(),
            "https://public-api.sonetel.com/account/1"
        );
        assert!(resolve(&base, "https://public-api.sonetel.com/x").is_ok());
        for bad in [
            "https://evil.example/account/1",
            "//evil.example/x",
            "http://public-api.sonetel.com/x",
            "https://public-api.sonetel.com:8443/x",
            "blob:https://public-api.sonetel.com/x",
            "https://user:pw@public-api.sonetel.com/x",
        ] {
            assert!(resolve(&base, bad).is_err(), "{bad}");
        }
    }

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            url: Url::parse("https://public-api.sonetel.com/").unwrap(),
            redirected: false,
            token: Arc::new(
                TokenResponse::from_stored(r#"{"access_token":"eyJ.the-token.sig"}"#.into())
                    .unwrap(),
            ),
        }
    }

    #[test]
    fn the_envelope_decides_success_and_failure() {
        assert_eq!(
            envelope(&answer(200, r#"{"status":"success","response":{"a":1}}"#)).unwrap(),
            r#"{"a":1}"#
        );
        let failed = envelope(&answer(
            200,
            r#"{"status":"failed","response":{"code":"INVALID_NUMBER","detail":"bad"}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            failed,
            AuthError::Api {
                status: 200,
                code: Some("INVALID_NUMBER".into()),
                detail: Some("bad".into()),
                retry_after: None,
            }
        );
        assert!(matches!(
            envelope(&answer(500, "<html>")),
            Err(AuthError::Http { status: 500, .. })
        ));
        assert!(matches!(
            envelope(&answer(404, r#"{"status":"failed"}"#)),
            Err(AuthError::Api { status: 404, .. })
        ));
        assert!(matches!(
            envelope(&answer(200, "[]")),
            Err(AuthError::Response { .. })
        ));
    }

    #[test]
    fn an_echoed_token_stays_out_of_errors() {
        let echo = r#"{"status":"failed","response":{"code":"X eyJ.the-token.sig","detail":"got eyJ.the-token.sig"}}"#;
        let text = format!("{:?}", envelope(&answer(200, echo)).unwrap_err());
        assert!(
            !text.contains("the-token") && text.contains("[redacted]"),
            "{text}"
        );
        let Err(AuthError::Http { body, .. }) = envelope(&answer(500, "token=eyJ.the-token.sig"))
        else {
            panic!("an HTTP error")
        };
        assert_eq!(body, "token=[redacted]");
    }
}
