//! The HTTP side: shared reqwest clients (keep-alive pools) in a bounded cache, request
//! options, a cap on requests in flight per endpoint, deadlines, and reading a capped body.

use std::collections::{HashMap, HashSet};
use std::error::Error as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use reqwest::{redirect, Url};
use rustls::pki_types::CertificateDer;
use tokio::sync::Semaphore;

use super::error::{AuthError, Invalid, NetKind, NetworkError};
use super::secret::WipedBytes;
use super::tls;

pub const DEFAULT_TOKEN_URL: &str = "https://api.sonetel.com/SonetelAuth/beta/oauth/token";
/// One request's deadline: Sonetel answers in well under a second, and a hang costs a
/// manager's caller this much of its whole call's deadline (`DEFAULT_CALL_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Largest body read from the token endpoint; a token answer is a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_URL_LEN: usize = 8 * 1024;
/// Requests in flight at once to one endpoint (scheme, host and port); more wait their
/// turn within their deadline. An app that fires 10 000 logins at once should not open
/// 10 000 sockets, and one endpoint that hangs must not hold up calls to another.
pub const MAX_IN_FLIGHT_PER_ENDPOINT: usize = 256;
/// Distinct client set-ups (CA bundles, proxies) kept with their connection pools. An app
/// that makes a new set-up per call gets clients that are dropped again, oldest first.
pub const MAX_CLIENTS: usize = 16;
/// Sonetel's documented client credentials, sent as HTTP Basic auth.
const CLIENT_ID: &str = "sonetel-api";

/// Where and how to send a token request. Built once per call from checked values.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    pub token_url: Url,
    pub timeout: Duration,
    pub refresh: bool,
    tls: TlsKey,
}

/// What makes two clients different: extra trusted roots, an explicit proxy, and whether
/// proxies are off altogether.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
struct TlsKey {
    ca_pem: Vec<Arc<[u8]>>,
    /// May carry `user:password@`, so it is never printed.
    proxy: Option<String>,
    /// No proxy, whatever the environment or the options say: for plain http, which we
    /// allow to loopback only, a proxy would carry the credentials in clear text.
    direct: bool,
}

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKey")
            .field("ca_bundles", &self.ca_pem.len())
            .field("proxy", &self.proxy.as_ref().map(|_| "[set]"))
            .finish()
    }
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            token_url: Url::parse(DEFAULT_TOKEN_URL).expect("default URL parses"),
            timeout: DEFAULT_TIMEOUT,
            refresh: true,
            tls: TlsKey::default(),
        }
    }
}

impl RequestOptions {
    /// Checks and sets the token endpoint. Plain http is allowed only to loopback hosts.
    pub fn set_token_url(&mut self, raw: &str) -> Result<(), Invalid> {
        self.token_url = parse_http_url(raw)?;
        Ok(())
    }

    /// The deadline of one request; it must be above zero.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), Invalid> {
        if timeout.is_zero() {
            return Err(Invalid::new("must be above 0"));
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Adds PEM root certificates to trust besides the built-in ones.
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<(), Invalid> {
        // Apps pass the same `ca` on every call: parse each distinct bundle once.
        static VALID: OnceLock<Mutex<HashSet<Arc<[u8]>>>> = OnceLock::new();
        let valid = VALID.get_or_init(Default::default);
        if let Some(known) = valid.lock().unwrap_or_else(|e| e.into_inner()).get(pem) {
            self.tls.ca_pem.push(known.clone());
            return Ok(());
        }
        match tls::pem_certificates(pem) {
            Some(_) => {
                let pem: Arc<[u8]> = Arc::from(pem);
                let mut valid = valid.lock().unwrap_or_else(|e| e.into_inner());
                if valid.len() < 64 {
                    valid.insert(pem.clone());
                }
                self.tls.ca_pem.push(pem);
                Ok(())
            }
            _ => Err(Invalid::new("must hold at least one PEM certificate")),
        }
    }

    /// The PEM bundles to trust besides the built-in roots: `NODE_EXTRA_CA_CERTS` and `ca`,
    /// for clients of other protocols (a `rediss://` store) that take PEM.
    pub fn extra_ca_pems(&self) -> Vec<Vec<u8>> {
        let mut pems: Vec<Vec<u8>> = std::env::var_os("NODE_EXTRA_CA_CERTS")
            .and_then(|path| std::fs::read(path).ok())
            .filter(|pem| tls::pem_certificates(pem).is_some())
            .into_iter()
            .collect();
        pems.extend(self.tls.ca_pem.iter().map(|pem| pem.to_vec()));
        pems
    }

    /// Sends every request through this proxy instead of the one the environment names.
    pub fn set_proxy(&mut self, raw: &str) -> Result<(), Invalid> {
        let url = Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Invalid::new("must be an http(s) URL"))?;
        self.tls.proxy = Some(url.to_string());
        Ok(())
    }
}

fn parse_http_url(raw: &str) -> Result<Url, Invalid> {
    if raw.len() > MAX_URL_LEN {
        return Err(Invalid::new("is longer than 8 KiB"));
    }
    let url = Url::parse(raw).map_err(|_| Invalid::new("is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new("must not carry user name or password"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(Invalid::new(
            "uses plain http to a host that is not loopback; credentials would travel unencrypted",
        )),
        _ => {
            return Err(Invalid::new(
                "must use https (or http to a loopback address)",
            ))
        }
    }
    if url.host().is_none() {
        return Err(Invalid::new("has no host"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Clients by set-up, least recently used first.
static CLIENTS: Mutex<Vec<(TlsKey, reqwest::Client)>> = Mutex::new(Vec::new());

/// The client for a request to `url` with this TLS/proxy set-up. Plain http (loopback only)
/// never goes through a proxy.
fn client_for_url(key: &TlsKey, url: &Url) -> Result<reqwest::Client, AuthError> {
    if url.scheme() == "http" {
        return client_for(&TlsKey {
            direct: true,
            proxy: None,
            ..key.clone()
        });
    }
    client_for(key)
}

/// The client for a TLS/proxy set-up: the most recently used [`MAX_CLIENTS`] are kept, so
/// connections are reused, while a set-up nobody uses any more is dropped with its pool.
fn client_for(key: &TlsKey) -> Result<reqwest::Client, AuthError> {
    let lookup = |clients: &mut Vec<(TlsKey, reqwest::Client)>| {
        let at = clients.iter().position(|(k, _)| k == key)?;
        let entry = clients.remove(at);
        let client = entry.1.clone();
        clients.push(entry);
        Some(client)
    };
    if let Some(c) = lookup(&mut CLIENTS.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(c);
    }
    let client = build_client(key)?;
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = lookup(&mut clients) {
        return Ok(c); // another call built it meanwhile
    }
    if clients.len() >= MAX_CLIENTS {
        clients.remove(0);
    }
    clients.push((key.clone(), client.clone()));
    Ok(client)
}

/// The in-flight limiter of the endpoint `url` points at, shared by every request to it.
fn limiter_for(url: &Url) -> Arc<Semaphore> {
    type Endpoint = (String, String, u16);
    static LIMITERS: OnceLock<Mutex<HashMap<Endpoint, Weak<Semaphore>>>> = OnceLock::new();
    let endpoint = (
        url.scheme().to_owned(),
        url.host_str().unwrap_or_default().to_owned(),
        url.port_or_known_default().unwrap_or(0),
    );
    let mut limiters = LIMITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(limiter) = limiters.get(&endpoint).and_then(Weak::upgrade) {
        return limiter;
    }
    // Endpoints nobody is calling any more hold nothing; forget them as new ones come.
    if limiters.len() >= 64 {
        limiters.retain(|_, l| l.strong_count() > 0);
    }
    let limiter = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_ENDPOINT));
    limiters.insert(endpoint, Arc::downgrade(&limiter));
    limiter
}

/// Certificates from `NODE_EXTRA_CA_CERTS`, read once, as Node.js itself does.
fn node_extra_ca_certs() -> &'static [CertificateDer<'static>] {
    static EXTRA: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    EXTRA.get_or_init(|| {
        std::env::var_os("NODE_EXTRA_CA_CERTS")
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|pem| tls::pem_certificates(&pem))
            .unwrap_or_default()
    })
}

fn build_client(key: &TlsKey) -> Result<reqwest::Client, AuthError> {
    let mut trusted = node_extra_ca_certs().to_vec();
    for pem in &key.ca_pem {
        trusted.extend(tls::pem_certificates(pem).unwrap_or_default());
    }
    let config = tls::client_config(&trusted).map_err(AuthError::Config)?;
    let mut builder = reqwest::Client::builder()
        // A redirect would re-send the credentials to another place.
        .redirect(redirect::Policy::none())
        .use_preconfigured_tls(config)
        .pool_idle_timeout(Duration::from_secs(60))
        .http1_only();
    if key.direct {
        builder = builder.no_proxy();
    } else if let Some(proxy) = &key.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|_| AuthError::Config("the proxy URL is not usable".into()))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| AuthError::Config(format!("TLS set-up failed: {e}")))
}

/// `Basic base64("sonetel-api:sonetel-api")`, encoded once.
fn client_authorization() -> HeaderValue {
    static VALUE: OnceLock<HeaderValue> = OnceLock::new();
    VALUE
        .get_or_init(|| {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_ID}"));
            HeaderValue::try_from(format!("Basic {encoded}")).expect("ASCII header value")
        })
        .clone()
}

/// What came back, before it is judged.
pub struct RawResponse {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
    /// The body was larger than the cap; `body` holds its start only.
    pub over_cap: bool,
    /// The answer's headers, for an API call; token requests do not keep them.
    pub headers: Option<HeaderMap>,
}

const USER_AGENT_VALUE: &str = concat!("sonetel-auth/", env!("CARGO_PKG_VERSION"));

/// POSTs `body` to the token endpoint with Sonetel's Basic credentials, all within the
/// deadline, and reads at most [`MAX_BODY`] bytes of the answer.
pub async fn post(
    opts: &RequestOptions,
    content_type: &str,
    body: WipedBytes,
) -> Result<RawResponse, AuthError> {
    let client = client_for_url(&opts.tls, &opts.token_url)?;
    let request = client
        .post(opts.token_url.clone())
        .header(AUTHORIZATION, client_authorization())
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .body(bytes::Bytes::from_owner(body));
    exchange(opts, &opts.token_url, request, MAX_BODY, false).await
}

/// Sends one request to `url` through the client `opts` set up (the same proxy, trust and
/// deadline as token requests), without following redirects, and reads at most `cap`
/// bytes of the answer, keeping its headers.
pub async fn send(
    opts: &RequestOptions,
    method: reqwest::Method,
    url: &Url,
    headers: HeaderMap,
    body: Option<bytes::Bytes>,
    cap: usize,
) -> Result<RawResponse, AuthError> {
    let client = client_for_url(&opts.tls, url)?;
    let mut request = client.request(method, url.clone()).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    exchange(opts, url, request, cap, true).await
}

/// One request and its answer, within the deadline and the endpoint's in-flight cap.
async fn exchange(
    opts: &RequestOptions,
    url: &Url,
    request: reqwest::RequestBuilder,
    cap: usize,
    keep_headers: bool,
) -> Result<RawResponse, AuthError> {
    let network = |e: reqwest::Error| {
        AuthError::Network(NetworkError {
            message: describe(&e, url),
            kind: classify(&e),
            host: url.host_str().map(str::to_owned),
            port: url.port_or_known_default(),
        })
    };
    let limiter = limiter_for(url);
    let exchange = async {
        let _permit = limiter
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("the request limiter was closed".into()))?;
        let mut response = request.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let headers = keep_headers.then(|| response.headers().clone());
        let mut body = Vec::new();
        let mut over_cap = response.content_length().is_some_and(|n| n > cap as u64);
        while !over_cap {
            match response.chunk().await.map_err(network)? {
                Some(chunk) if body.len() + chunk.len() > cap => {
                    let room = cap - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    over_cap = true;
                }
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        // Dropping `response` unread closes the connection instead of draining the rest.
        Ok(RawResponse {
            status,
            retry_after,
            body,
            over_cap,
            headers,
        })
    };
    tokio::time::timeout(opts.timeout, exchange)
        .await
        .unwrap_or(Err(AuthError::Timeout {
            timeout: opts.timeout,
        }))
}

/// Checks an API origin (`apiUrl`): https, or http to loopback; no user name or password.
pub fn parse_api_url(raw: &str) -> Result<Url, Invalid> {
    let url = parse_http_url(raw)?;
    // Paths are given per call; a path here would be silently dropped.
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Invalid::new(
            "must be an origin (scheme, host and port), without a path or query",
        ));
    }
    Ok(url)
}

/// `Retry-After` as a wait from now: delta-seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The error and its causes in one line, most specific last, without repeats. It names
/// the host, not the whole URL: reqwest's own first line would repeat the URL.
fn describe(e: &reqwest::Error, url: &Url) -> String {
    let what = if e.is_connect() {
        "could not connect to"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off from"
    } else {
        "the request failed to"
    };
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    );
    let mut parts: Vec<String> = vec![format!("{what} {host}")];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// What kind of network failure `e` is, from the first cause in its chain that tells.
fn classify(e: &reqwest::Error) -> NetKind {
    let mut dns = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return tls_kind(tls);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return tls_kind(tls);
            }
            if dns {
                // getaddrinfo's words: EAI_AGAIN says "Temporary failure".
                let text = io.to_string();
                return if text.contains("Temporary failure") || text.contains("try again") {
                    NetKind::DnsTemporary
                } else {
                    NetKind::HostNotFound
                };
            }
            if let Some(kind) = errno_kind(io) {
                return kind;
            }
        }
        let text = s.to_string();
        // A boxed error of the TLS connector does not downcast; rustls's words say it.
        if let Some(kind) = tls_text_kind(&text) {
            return kind;
        }
        // hyper-util names a failed look-up "dns error"; its cause says how.
        dns |= text == "dns error";
        source = s.source();
    }
    if dns {
        NetKind::HostNotFound
    } else {
        NetKind::Other
    }
}

fn errno_kind(io: &std::io::Error) -> Option<NetKind> {
    use std::io::ErrorKind as K;
    Some(match io.kind() {
        K::ConnectionRefused => NetKind::ConnectionRefused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            NetKind::ConnectionReset
        }
        K::TimedOut => NetKind::TimedOut,
        K::HostUnreachable => NetKind::HostUnreachable,
        K::NetworkUnreachable => NetKind::NetworkUnreachable,
        _ => return None,
    })
}

/// The kind rustls's message for a refused certificate names.
fn tls_text_kind(text: &str) -> Option<NetKind> {
    let (_, what) = text.split_once("invalid peer certificate: ")?;
    Some(match what {
        w if w.starts_with("Expired") => NetKind::CertExpired,
        w if w.starts_with("NotValidYet") => NetKind::CertNotYetValid,
        w if w.starts_with("UnknownIssuer") => NetKind::CertUnknownIssuer,
        w if w.starts_with("NotValidForName")
            || w.starts_with("certificate not valid for name") =>
        {
            NetKind::CertWrongName
        }
        w if w.starts_with("BadSignature") => NetKind::CertBadSignature,
        w if w.starts_with("Revoked") => NetKind::CertRevoked,
        w if w.starts_with("certificate expired") => NetKind::CertExpired,
        w if w.starts_with("certificate not valid yet") => NetKind::CertNotYetValid,
        _ => NetKind::Tls,
    })
}

fn tls_kind(e: &rustls::Error) -> NetKind {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => NetKind::CertExpired,
            C::NotValidYet | C::NotValidYetContext { .. } => NetKind::CertNotYetValid,
            C::UnknownIssuer => NetKind::CertUnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => NetKind::CertWrongName,
            C::BadSignature => NetKind::CertBadSignature,
            C::Revoked => NetKind::CertRevoked,
            _ => NetKind::Tls,
        },
        _ => NetKind::Tls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let mut o = RequestOptions::default();
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]:80/",
            "http://127.8.9.10/",
            "https://api.sonetel.com/SonetelAuth/beta/oauth/token",
        ] {
            o.set_token_url(ok).unwrap();
        }
        for bad in [
            "http://api.sonetel.com/x",
            "http://10.0.0.1/",
            "ftp://localhost/",
            "file:///etc/passwd",
            "not a url",
            "https://user:pw@api.sonetel.com/",
            "",
        ] {
            assert!(o.set_token_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_no_proxy_password() {
        let mut o = RequestOptions::default();
        o.set_proxy("http://user:hunter22@proxy.example:3128")
            .unwrap();
        assert!(!format!("{o:?}").contains("hunter22"));
    }

    #[test]
    fn retry_after_forms() {
        let at = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h)
        };
        assert_eq!(at("7"), Some(Duration::from_secs(7)));
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let wait = at(&later).unwrap();
        assert!(wait > Duration::from_secs(110) && wait <= Duration::from_secs(120));
        assert_eq!(at("soon"), None);
    }

    #[test]
    fn zero_timeout_is_refused() {
        let mut o = RequestOptions::default();
        assert!(o.set_timeout(Duration::ZERO).is_err());
        o.set_timeout(Duration::from_micros(1500)).unwrap();
        assert_eq!(o.timeout, Duration::from_micros(1500));
    }

    #[test]
    fn clients_are_bounded_and_reused() {
        let key = |i: usize| TlsKey {
            ca_pem: Vec::new(),
            proxy: Some(format!("http://u{i}:p@127.0.0.1:9/")),
            direct: false,
        };
        for i in 0..MAX_CLIENTS * 3 {
            client_for(&key(i)).unwrap();
        }
        let cached = || CLIENTS.lock().unwrap().len();
        assert_eq!(cached(), MAX_CLIENTS);
        // The most recent set-ups are the ones kept: using one again builds nothing new.
        client_for(&key(MAX_CLIENTS * 3 - 1)).unwrap();
        assert_eq!(cached(), MAX_CLIENTS);
        assert!(CLIENTS
            .lock()
            .unwrap()
            .iter()
            .any(|(k, _)| *k == key(MAX_CLIENTS * 2)));
        assert!(!CLIENTS.lock().unwrap().iter().any(|(k, _)| *k == key(0)));
    }

    #[test]
    fn certificate_refusals_by_rustls_words() {
        let kind = |t: &str| tls_text_kind(t);
        assert_eq!(
            kind("client error (Connect): invalid peer certificate: UnknownIssuer"),
            Some(NetKind::CertUnknownIssuer)
        );
        assert_eq!(
            kind("invalid peer certificate: NotValidForName"),
            Some(NetKind::CertWrongName)
        );
        assert_eq!(kind("connection refused"), None);
    }

    #[test]
    fn one_limiter_per_endpoint() {
        let a = limiter_for(&Url::parse("https://a.example/x").unwrap());
        let a2 = limiter_for(&Url::parse("https://a.example:443/y").unwrap());
        let b = limiter_for(&Url::parse("https://b.example/x").unwrap());
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
    }
}
