//! Options as the face hands them over: one JSON text whose types the face has checked
//! (no prototype or realm can disturb it), turned here into the core's values. What only
//! the core can judge (a URL, a PEM bundle, a store URL) is refused here with the option's
//! name, as the caller wrote it.

use std::sync::Mutex;
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, Either};
use reqwest::Url;
use serde::Deserialize;

use super::outcome::invalid_text;
use crate::core::api::DEFAULT_API_URL;
use crate::core::client::{parse_api_url, RequestOptions};
use crate::core::manager::{
    ManagerConfig, DEFAULT_AUTH_FAILURE_COOLDOWN, DEFAULT_CALL_TIMEOUT, DEFAULT_REFRESH_MARGIN,
    DEFAULT_RETRIES, DEFAULT_RETRY_DELAY, DEFAULT_STORE_LEASE,
};
use crate::core::secret::Secret;
use crate::core::store::{self, StoreConfig, StoreUrl};

/// How long a store operation may take before the manager carries on alone.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest user name or password we accept: far above any real one, far below abuse.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// A refusal, as the text the face turns into its `TypeError`.
pub type Refused = String;

/// The options every token request shares.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestConfig {
    token_url: Option<String>,
    timeout_ms: Option<f64>,
    refresh: Option<bool>,
    #[serde(default)]
    ca: Vec<String>,
    proxy: Option<String>,
}

/// The options of `new TokenManager()` beyond the credentials and secrets.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagerJson {
    #[serde(flatten)]
    request: RequestConfig,
    refresh_margin_ms: Option<f64>,
    retries: Option<u32>,
    retry_delay_ms: Option<f64>,
    auth_failure_cooldown_ms: Option<f64>,
    call_timeout_ms: Option<f64>,
    auto_refresh: Option<bool>,
    api_url: Option<String>,
    store: Option<String>,
    store_key: Option<String>,
    store_timeout_ms: Option<f64>,
    store_lease_ms: Option<f64>,
    /// Whether anybody listens to every event (`onEvent`, `NODE_DEBUG`).
    #[serde(default)]
    pub events: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, Refused> {
    serde_json::from_str(json).map_err(|e| {
        super::outcome::error_text(&crate::core::error::AuthError::Internal(format!(
            "options did not cross: {e}"
        )))
    })
}

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl RequestConfig {
    /// The request options of `json`, read again only when the text changes: apps send
    /// the same options, a CA bundle among them, on every call.
    pub fn options(json: &str) -> Result<RequestOptions, Refused> {
        static LAST: Mutex<Option<(String, RequestOptions)>> = Mutex::new(None);
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, options)) = last.as_ref().filter(|(text, _)| text == json) {
            return Ok(options.clone());
        }
        let options = parse::<RequestConfig>(json)?.build("options")?;
        *last = Some((json.to_owned(), options.clone()));
        Ok(options)
    }

    /// The core's request options; `path` is how the caller named the options object.
    pub fn build(&self, path: &str) -> Result<RequestOptions, Refused> {
        let at = |name: &str| format!("{path}.{name}");
        let mut request = RequestOptions::default();
        if let Some(url) = &self.token_url {
            request
                .set_token_url(url)
                .map_err(|r| invalid_text(&at("tokenUrl"), &r))?;
        }
        if let Some(ms) = self.timeout_ms {
            request
                .set_timeout(millis(ms))
                .map_err(|r| invalid_text(&at("timeoutMs"), &r))?;
        }
        if let Some(refresh) = self.refresh {
            request.refresh = refresh;
        }
        for (i, pem) in self.ca.iter().enumerate() {
            let name = if self.ca.len() == 1 {
                at("ca")
            } else {
                format!("{}[{i}]", at("ca"))
            };
            request
                .add_ca_pem(pem.as_bytes())
                .map_err(|r| invalid_text(&name, &r))?;
        }
        if let Some(proxy) = &self.proxy {
            request
                .set_proxy(proxy)
                .map_err(|r| invalid_text(&at("proxy"), &r))?;
        }
        Ok(request)
    }
}

/// A credential: a string the face checked, or bytes checked here (at most `max`,
/// UTF-8, not empty, no NUL) that the app can wipe after the call.
pub fn credential(
    value: Either<String, Buffer>,
    what: &str,
    max: usize,
) -> Result<Secret, Refused> {
    let bytes = match value {
        Either::A(text) => return Ok(Secret::new(text)),
        Either::B(bytes) => bytes,
    };
    let refuse = |why: &str| invalid_text(what, &crate::core::error::Invalid::new(why));
    if bytes.len() > max {
        return Err(refuse(&format!("is longer than {max} bytes")));
    }
    let secret = Secret::new(String::from_utf8(bytes.to_vec()).map_err(|e| {
        zeroize::Zeroize::zeroize(&mut e.into_bytes());
        refuse("is not valid UTF-8")
    })?);
    if secret.expose().is_empty() || secret.expose().contains('\0') {
        return Err(refuse("must not be empty or contain NUL characters"));
    }
    Ok(secret)
}

/// What `new TokenManager()` makes of its options.
pub struct ManagerParts {
    pub config: ManagerConfig,
    pub api_url: Url,
    pub events: bool,
}

impl ManagerJson {
    pub fn from_json(json: &str) -> Result<Self, Refused> {
        parse(json)
    }

    pub fn build(
        self,
        username: Secret,
        password: Secret,
        store_secret: Option<Either<String, Buffer>>,
    ) -> Result<ManagerParts, Refused> {
        let request = self.request.build("options")?;
        let api_url = match &self.api_url {
            Some(url) => parse_api_url(url).map_err(|r| invalid_text("options.apiUrl", &r))?,
            None => Url::parse(DEFAULT_API_URL).expect("the default API URL parses"),
        };
        let store = match &self.store {
            None => None,
            Some(url) => Some(self.store_config(url, &request, &username, store_secret)?),
        };
        Ok(ManagerParts {
            config: ManagerConfig {
                username,
                password,
                request,
                refresh_margin: self
                    .refresh_margin_ms
                    .map_or(DEFAULT_REFRESH_MARGIN, millis),
                retries: self.retries.unwrap_or(DEFAULT_RETRIES),
                retry_delay: self.retry_delay_ms.map_or(DEFAULT_RETRY_DELAY, millis),
                auth_failure_cooldown: self
                    .auth_failure_cooldown_ms
                    .map_or(DEFAULT_AUTH_FAILURE_COOLDOWN, millis),
                call_timeout: self.call_timeout_ms.map_or(DEFAULT_CALL_TIMEOUT, millis),
                auto_refresh: self.auto_refresh.unwrap_or(false),
                store,
            },
            api_url,
            events: self.events,
        })
    }

    /// `store`, `storeKey`, `storeSecret` and `storeTimeoutMs`: where a fleet shares its token.
    fn store_config(
        &self,
        url: &str,
        request: &RequestOptions,
        username: &Secret,
        secret: Option<Either<String, Buffer>>,
    ) -> Result<StoreConfig, Refused> {
        let url = StoreUrl::parse(url).map_err(|r| invalid_text("options.store", &r))?;
        if secret.is_none() && url.in_clear_off_machine() {
            return Err(invalid_text(
                "options.store",
                &crate::core::error::Invalid::new(
                    "is plain redis:// to another machine: the token (and the Redis password) would cross the network in clear. Use rediss:// (TLS), or give options.storeSecret to seal the token",
                ),
            ));
        }
        let owner = store::default_key(request.token_url.as_str(), username.expose());
        let key = match &self.store_key {
            Some(key) if !key.is_empty() && key.len() <= 512 => key.clone(),
            Some(_) => {
                return Err(invalid_text(
                    "options.storeKey",
                    &crate::core::error::Invalid::new("must be 1 to 512 bytes"),
                ))
            }
            None => owner.clone(),
        };
        let sealing = match secret {
            None => None,
            Some(secret) => {
                let (bytes, passphrase) = match secret {
                    Either::A(text) => (zeroize::Zeroizing::new(text.into_bytes()), true),
                    Either::B(bytes) => (zeroize::Zeroizing::new(bytes.to_vec()), false),
                };
                Some(
                    store::Sealing::new(bytes, passphrase, &key)
                        .map_err(|r| invalid_text("options.storeSecret", &r))?,
                )
            }
        };
        let timeout = self.store_timeout_ms.map_or(DEFAULT_STORE_TIMEOUT, millis);
        // A renewal (two round trips, each within the store timeout) falls due every third
        // of the lease: a lease shorter than two store timeouts can lapse under a live holder.
        let lease = match self.store_lease_ms.map(millis) {
            Some(lease) if lease < timeout * 2 => {
                return Err(invalid_text(
                    "options.storeLeaseMs",
                    &crate::core::error::Invalid::new(
                        "must be at least twice options.storeTimeoutMs",
                    ),
                ))
            }
            Some(lease) => lease,
            None => DEFAULT_STORE_LEASE.max(timeout * 3),
        };
        let store = url
            .open(&key, &request.extra_ca_pems(), timeout)
            .map_err(|r| invalid_text("options.store", &r))?;
        Ok(StoreConfig {
            store,
            sealing,
            key,
            owner,
            timeout,
            lease,
        })
    }
}
