//! Argument checks at the edge: JavaScript values in, checked core values out. Options are
//! read as own enumerable properties only (what `Object.keys` lists), so nothing put on
//! `Object.prototype` becomes an option, and a name we do not know is an error rather
//! than silently ignored. Messages name the argument and its type, never its value (it
//! may be a password).

use std::time::Duration;

use napi::bindgen_prelude::{JsObjectValue, KeyCollectionMode, KeyConversion, KeyFilter, Unknown};
use napi::{Env, JsValue, ValueType};

use super::error::Failure;
use super::instance::Instance;
use super::js;
use crate::core::api::DEFAULT_API_URL;
use crate::core::client::{parse_api_url, RequestOptions};
use crate::core::error::Invalid;
use crate::core::manager::{
    ManagerConfig, DEFAULT_AUTH_FAILURE_COOLDOWN, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
};
use crate::core::secret::Secret;
use crate::core::store::{self, StoreConfig, StoreUrl};
use crate::core::token::{TokenResponse, MAX_TOKEN_LEN};
use reqwest::Url;

/// Longest user name or password we accept: far above any real one, far below abuse.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;
const MAX_RETRIES: f64 = 10.0;
/// Largest `timeoutMs` and the like: what Node's own timers accept.
pub const MAX_TIMER_MS: f64 = 2_147_483_647.0;
/// How long a store operation may take before the manager carries on alone.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Largest stored token we read back, as JSON text.
const MAX_STORED_TOKEN: usize = 1024 * 1024;

/// The options of `createAccessToken` and `refreshAccessToken`.
const REQUEST_OPTIONS: &[&str] = &["tokenUrl", "timeoutMs", "refresh", "ca", "proxy", "signal"];
/// The options of `new TokenManager()`.
const MANAGER_OPTIONS: &[&str] = &[
    "username",
    "password",
    "tokenUrl",
    "timeoutMs",
    "refresh",
    "ca",
    "proxy",
    "refreshMarginMs",
    "retries",
    "retryDelayMs",
    "authFailureCooldownMs",
    "autoRefresh",
    "token",
    "onToken",
    "onEvent",
    "apiUrl",
    "store",
    "storeKey",
    "storeSecret",
    "storeTimeoutMs",
];
/// The options of `getAccessToken()` and `authorizationHeader()`.
const CALL_OPTIONS: &[&str] = &["signal"];

fn wrong_type(value: &Unknown, what: &str, expected: &str) -> Failure {
    Failure::ArgType(format!(
        "{what} must be {expected}, received {}",
        js::type_name(value)
    ))
}

fn invalid(what: &str) -> impl FnOnce(Invalid) -> Failure + '_ {
    move |reason| Failure::ArgValue(format!("{what} {reason}"))
}

/// An options object, as the own enumerable properties that are not `undefined`.
pub struct Options<'e> {
    env: &'e Env,
    path: &'static str,
    fields: Vec<(String, Unknown<'e>)>,
}

impl<'e> Options<'e> {
    /// `undefined`/`null` as None, a plain object as its fields, anything else a type
    /// error. A name not in `known` is a value error that suggests the closest known one.
    pub fn read(
        env: &'e Env,
        value: &Unknown<'e>,
        path: &'static str,
        known: &[&str],
    ) -> Result<Option<Self>, Failure> {
        Self::read_fields(env, value, path, Some(known))
    }

    /// An object of any own properties (a query string's fields, say).
    pub fn read_any(
        env: &'e Env,
        value: &Unknown<'e>,
        path: &'static str,
    ) -> Result<Option<Self>, Failure> {
        Self::read_fields(env, value, path, None)
    }

    fn read_fields(
        env: &'e Env,
        value: &Unknown<'e>,
        path: &'static str,
        known: Option<&[&str]>,
    ) -> Result<Option<Self>, Failure> {
        if js::is_nullish(value) {
            return Ok(None);
        }
        let object = match js::object(value) {
            Some(o)
                if js::kind(value) == ValueType::Object && !value.is_array().unwrap_or(true) =>
            {
                o
            }
            _ if value.is_array().unwrap_or(false) => {
                return Err(Failure::ArgType(format!(
                    "{path} must be an object, received an array"
                )))
            }
            _ => return Err(wrong_type(value, path, "an object")),
        };
        // Only a plain object: its own properties are all we read, so a class instance,
        // a URL or a Map would otherwise pass for "no options" without a word.
        if !js::is_plain_object(env, &object) {
            return Err(Failure::ArgType(format!(
                "{path} must be a plain object (an object literal), received an instance of a class"
            )));
        }
        let unreadable = || Failure::ArgValue(format!("{path} could not be read"));
        let names = js::guard(
            env,
            || {
                object.get_all_property_names(
                    KeyCollectionMode::OwnOnly,
                    KeyFilter::Enumerable,
                    KeyConversion::NumbersToStrings,
                )
            },
            unreadable,
        )?;
        let count = js::guard(
            env,
            || names.get_named_property_unchecked::<u32>("length"),
            unreadable,
        )?;
        let mut fields = Vec::new();
        for i in 0..count {
            let name = js::guard(env, || names.get_element::<Unknown>(i), unreadable)?;
            // Symbol keys are never options.
            let Some(name) = js::string(&name) else {
                continue;
            };
            let name = js::read_utf8(name, 1024, path)?;
            if let Some(known) = known.filter(|k| !k.contains(&name.as_str())) {
                return Err(unknown_option(path, &name, known));
            }
            let field = js::guard(
                env,
                || object.get_named_property_unchecked::<Unknown>(&name),
                || {
                    Failure::ArgValue(format!(
                        "{path}.{name} could not be read (its getter threw)"
                    ))
                },
            )?;
            if js::kind(&field) != ValueType::Undefined {
                fields.push((name, field));
            }
        }
        Ok(Some(Options { env, path, fields }))
    }

    /// The field `name`, if it was given.
    pub fn field(&self, name: &str) -> Option<Unknown<'e>> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Every field given, in the object's order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Unknown<'e>)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v))
    }

    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Failure> {
        self.field(name)
            .map(|v| js::number(&v).ok_or_else(|| wrong_type(&v, &self.path(name), "a number")))
            .transpose()
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Failure> {
        self.field(name)
            .map(|v| js::boolean(&v).ok_or_else(|| wrong_type(&v, &self.path(name), "a boolean")))
            .transpose()
    }

    /// A string that is not a secret (a URL), read as UTF-8.
    pub fn text(&self, name: &str) -> Result<Option<String>, Failure> {
        let path = self.path(name);
        self.field(name)
            .map(|v| js::string(&v).ok_or_else(|| wrong_type(&v, &path, "a string")))
            .transpose()?
            .map(|s| js::read_utf8(s, 16 * 1024, &path))
            .transpose()
    }

    /// Milliseconds as a `Duration`: finite, at least `min`, at most what a Node timer takes.
    fn millis(&self, name: &str, above_zero: bool) -> Result<Option<Duration>, Failure> {
        let Some(ms) = self.number(name)? else {
            return Ok(None);
        };
        let low_ok = if above_zero { ms > 0.0 } else { ms >= 0.0 };
        if !ms.is_finite() || !low_ok || ms > MAX_TIMER_MS {
            let low = if above_zero { "above 0" } else { "from 0" };
            return Err(Failure::ArgValue(format!(
                "{} must be a number of milliseconds {low} up to {MAX_TIMER_MS}",
                self.path(name)
            )));
        }
        Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
    }

    pub fn signal(&self) -> Result<Option<Unknown<'e>>, Failure> {
        let Some(signal) = self.field("signal") else {
            return Ok(None);
        };
        let path = self.path("signal");
        let shaped = js::object(&signal).is_some_and(|o| {
            let has = |name: &str, kind: ValueType| {
                js::guard(
                    self.env,
                    || o.get_named_property_unchecked::<Unknown>(name),
                    || Failure::ArgType(String::new()),
                )
                .is_ok_and(|v| js::kind(&v) == kind)
            };
            has("aborted", ValueType::Boolean) && has("addEventListener", ValueType::Function)
        });
        if !shaped {
            return Err(wrong_type(&signal, &path, "an AbortSignal"));
        }
        Ok(Some(signal))
    }
}

/// "options.tokeUrl is not an option (did you mean tokenUrl?)".
fn unknown_option(path: &str, name: &str, known: &[&str]) -> Failure {
    let shown: String = name.chars().take(64).collect();
    let closest = known
        .iter()
        .map(|k| {
            (
                distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min()
        .filter(|(d, _)| *d <= 3);
    let hint = match closest {
        Some((_, k)) => format!(" (did you mean {k}?)"),
        None => format!(" (known options: {})", known.join(", ")),
    };
    Failure::ArgValue(format!("{path}.{shown} is not an option{hint}"))
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn check_text(text: String, what: &str) -> Result<Secret, Failure> {
    let secret = Secret::new(text);
    if secret.expose().is_empty() {
        return Err(Failure::ArgValue(format!("{what} must not be empty")));
    }
    if secret.expose().contains('\0') {
        return Err(Failure::ArgValue(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(secret)
}

/// A non-empty string, read so that an unpaired surrogate is an error.
fn text(value: &Unknown, what: &str, max_len: usize) -> Result<Secret, Failure> {
    let s = js::string(value).ok_or_else(|| wrong_type(value, what, "a string"))?;
    check_text(js::read_utf16(s, max_len, what)?, what)
}

pub fn username(value: &Unknown, what: &str) -> Result<Secret, Failure> {
    text(value, what, MAX_CREDENTIAL_LEN)
}

pub fn token(value: &Unknown, what: &str) -> Result<Secret, Failure> {
    text(value, what, MAX_TOKEN_LEN)
}

/// A string, or a `Buffer`/`Uint8Array` of UTF-8 that the app can wipe after the call.
pub fn password(value: &Unknown, what: &str) -> Result<Secret, Failure> {
    if let Some(bytes) = js::bytes(value) {
        if bytes.len() > MAX_CREDENTIAL_LEN {
            let mut bytes = bytes;
            zeroize::Zeroize::zeroize(&mut bytes);
            return Err(Failure::ArgValue(format!(
                "{what} is longer than {MAX_CREDENTIAL_LEN} bytes"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Failure::ArgValue(format!("{what} is not valid UTF-8"))
        })?;
        return check_text(text, what);
    }
    if js::kind(value) != ValueType::String {
        return Err(wrong_type(value, what, "a string or a Buffer"));
    }
    text(value, what, MAX_CREDENTIAL_LEN)
}

/// The checked request options and the `AbortSignal`, if any.
pub struct CallOptions<'e> {
    pub request: RequestOptions,
    pub signal: Option<Unknown<'e>>,
}

/// The request options every request-making call shares.
fn request_options(options: Option<&Options>) -> Result<RequestOptions, Failure> {
    let mut request = RequestOptions::default();
    let Some(o) = options else { return Ok(request) };
    if let Some(url) = o.text("tokenUrl")? {
        request
            .set_token_url(&url)
            .map_err(invalid(&o.path("tokenUrl")))?;
    }
    if let Some(timeout) = o.millis("timeoutMs", true)? {
        request
            .set_timeout(timeout)
            .map_err(invalid(&o.path("timeoutMs")))?;
    }
    if let Some(refresh) = o.boolean("refresh")? {
        request.refresh = refresh;
    }
    if let Some(ca) = o.field("ca") {
        ca_option(o.env, &ca, &mut request, &o.path("ca"))?;
    }
    if let Some(proxy) = o.text("proxy")? {
        request
            .set_proxy(&proxy)
            .map_err(invalid(&o.path("proxy")))?;
    }
    Ok(request)
}

/// The `options` argument of `createAccessToken` and `refreshAccessToken`.
pub fn call_options<'e>(env: &'e Env, value: &Unknown<'e>) -> Result<CallOptions<'e>, Failure> {
    let options = Options::read(env, value, "options", REQUEST_OPTIONS)?;
    Ok(CallOptions {
        request: request_options(options.as_ref())?,
        signal: options.as_ref().map(Options::signal).transpose()?.flatten(),
    })
}

/// The argument of `getAccessToken` and `authorizationHeader`: `{ signal }`.
pub fn signal_only<'e>(env: &'e Env, value: &Unknown<'e>) -> Result<Option<Unknown<'e>>, Failure> {
    match Options::read(env, value, "options", CALL_OPTIONS)? {
        Some(o) => o.signal(),
        None => Ok(None),
    }
}

/// The items of an array (at most 1000).
pub fn array_items<'e>(
    env: &'e Env,
    value: &Unknown<'e>,
    path: &str,
) -> Result<Vec<Unknown<'e>>, Failure> {
    let array = js::object(value).ok_or_else(|| wrong_type(value, path, "an array"))?;
    let unreadable = || Failure::ArgValue(format!("{path} could not be read"));
    let len = js::guard(
        env,
        || array.get_named_property_unchecked::<u32>("length"),
        unreadable,
    )?;
    if len > 1000 {
        return Err(Failure::ArgValue(format!(
            "{path} has more than 1000 items"
        )));
    }
    (0..len)
        .map(|i| {
            js::guard(
                env,
                || array.get_element::<Unknown>(i),
                || Failure::ArgValue(format!("{path}[{i}] could not be read")),
            )
        })
        .collect()
}

/// `ca`: a PEM string or Buffer, or an array of them.
fn ca_option(
    env: &Env,
    value: &Unknown,
    request: &mut RequestOptions,
    path: &str,
) -> Result<(), Failure> {
    if !value.is_array().unwrap_or(false) {
        return ca_one(value, request, path);
    }
    for (i, item) in array_items(env, value, path)?.iter().enumerate() {
        ca_one(item, request, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

fn ca_one(value: &Unknown, request: &mut RequestOptions, path: &str) -> Result<(), Failure> {
    let pem = match (js::bytes(value), js::string(value)) {
        (Some(bytes), _) => bytes,
        (None, Some(s)) => js::read_utf8(s, 1024 * 1024, path)?.into_bytes(),
        (None, None) => return Err(wrong_type(value, path, "a PEM string or Buffer")),
    };
    request.add_ca_pem(&pem).map_err(invalid(path))
}

/// What `new TokenManager(options)` needs.
pub struct ManagerArgs<'e> {
    pub config: ManagerConfig,
    pub restored: Option<TokenResponse>,
    pub on_token: Option<Unknown<'e>>,
    pub on_event: Option<Unknown<'e>>,
    /// The origin of Sonetel's REST API, the only place `fetch` and `api` send the token.
    pub api_url: Url,
}

pub fn manager_options<'e>(env: &'e Env, value: &Unknown<'e>) -> Result<ManagerArgs<'e>, Failure> {
    let Some(o) = Options::read(env, value, "options", MANAGER_OPTIONS)? else {
        return Err(wrong_type(
            value,
            "options",
            "an object with username and password",
        ));
    };
    let username = match o.field("username") {
        Some(v) => username(&v, "options.username")?,
        None => {
            return Err(Failure::ArgType(
                "options.username must be a string, received undefined".into(),
            ))
        }
    };
    let password = match o.field("password") {
        Some(v) => password(&v, "options.password")?,
        None => {
            return Err(Failure::ArgType(
                "options.password must be a string or a Buffer, received undefined".into(),
            ))
        }
    };
    let request = request_options(Some(&o))?;
    let refresh_margin = o
        .millis("refreshMarginMs", false)?
        .unwrap_or(DEFAULT_REFRESH_MARGIN);
    let retries = match o.number("retries")? {
        Some(n) if n.fract() == 0.0 && (0.0..=MAX_RETRIES).contains(&n) => n as u32,
        Some(_) => {
            return Err(Failure::ArgValue(format!(
                "options.retries must be a whole number from 0 to {MAX_RETRIES}"
            )))
        }
        None => DEFAULT_RETRIES,
    };
    let retry_delay = o
        .millis("retryDelayMs", false)?
        .unwrap_or(DEFAULT_RETRY_DELAY);
    let restored = match o.field("token") {
        None => None,
        Some(t) if js::kind(&t) == ValueType::Null => None,
        Some(t) if js::kind(&t) == ValueType::Object && !t.is_array().unwrap_or(true) => {
            Some(stored_token(env, t)?)
        }
        Some(t) => return Err(wrong_type(&t, "options.token", "an AccessToken object")),
    };
    let auth_failure_cooldown = o
        .millis("authFailureCooldownMs", false)?
        .unwrap_or(DEFAULT_AUTH_FAILURE_COOLDOWN);
    let auto_refresh = o.boolean("autoRefresh")?.unwrap_or(false);
    let function = |name: &str| match o.field(name) {
        Some(f) if js::kind(&f) == ValueType::Function => Ok(Some(f)),
        Some(f) => Err(wrong_type(&f, &o.path(name), "a function")),
        None => Ok(None),
    };
    let store = store_config(&o, &request, &username)?;
    Ok(ManagerArgs {
        config: ManagerConfig {
            username,
            password,
            request,
            refresh_margin,
            retries,
            retry_delay,
            auth_failure_cooldown,
            auto_refresh,
            store,
        },
        restored,
        on_token: function("onToken")?,
        on_event: function("onEvent")?,
        api_url: match o.text("apiUrl")? {
            Some(url) => parse_api_url(&url).map_err(invalid("options.apiUrl"))?,
            None => {
                Url::parse(DEFAULT_API_URL).map_err(|_| js::internal(env, "default API URL"))?
            }
        },
    })
}

/// `store`, `storeKey`, `storeSecret` and `storeTimeoutMs`: where a fleet shares its token.
fn store_config(
    o: &Options,
    request: &RequestOptions,
    username: &Secret,
) -> Result<Option<StoreConfig>, Failure> {
    let Some(url) = o.text("store")? else {
        for name in ["storeKey", "storeSecret", "storeTimeoutMs"] {
            if o.field(name).is_some() {
                return Err(Failure::ArgValue(format!(
                    "options.{name} needs options.store"
                )));
            }
        }
        return Ok(None);
    };
    let url = StoreUrl::parse(&url).map_err(invalid("options.store"))?;
    let owner = store::default_key(request.token_url.as_str(), username.expose());
    let key = match o.text("storeKey")? {
        Some(key) if !key.is_empty() && key.len() <= 512 => key,
        Some(_) => {
            return Err(Failure::ArgValue(
                "options.storeKey must be 1 to 512 bytes".into(),
            ))
        }
        None => owner.clone(),
    };
    let sealing = match o.field("storeSecret") {
        None => None,
        Some(secret) => {
            let passphrase = js::kind(&secret) == ValueType::String;
            let bytes = match (js::bytes(&secret), js::string(&secret)) {
                (Some(bytes), _) => zeroize::Zeroizing::new(bytes),
                (None, Some(s)) => zeroize::Zeroizing::new(
                    js::read_utf16(s, 4096, "options.storeSecret")?.into_bytes(),
                ),
                (None, None) => {
                    return Err(wrong_type(
                        &secret,
                        "options.storeSecret",
                        "a string or a Uint8Array",
                    ))
                }
            };
            Some(
                store::sealing_key(&bytes, passphrase, &key)
                    .map_err(invalid("options.storeSecret"))?,
            )
        }
    };
    let timeout = o
        .millis("storeTimeoutMs", true)?
        .unwrap_or(DEFAULT_STORE_TIMEOUT);
    let store = url
        .open(&key, &request.extra_ca_pems(), timeout)
        .map_err(invalid("options.store"))?;
    Ok(Some(StoreConfig {
        store,
        sealing,
        key,
        owner,
        timeout,
    }))
}

/// A token the app stored, read through `JSON.stringify`: it copes with cycles, depth,
/// getters and Proxies by throwing, which becomes an argument error here.
fn stored_token(env: &Env, token: Unknown) -> Result<TokenResponse, Failure> {
    let instance = Instance::get(env)?;
    let json = instance.json_stringify(env, token, MAX_STORED_TOKEN).ok_or_else(|| {
        Failure::ArgValue("options.token could not be read as JSON (a cycle, a getter that throws, or too large)".into())
    })?;
    TokenResponse::from_stored(json).map_err(invalid("options.token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_option() {
        let Failure::ArgValue(m) = unknown_option("options", "tokeUrl", REQUEST_OPTIONS) else {
            panic!()
        };
        assert_eq!(
            m,
            "options.tokeUrl is not an option (did you mean tokenUrl?)"
        );
        let Failure::ArgValue(m) = unknown_option("options", "zzzzzzzzzz", CALL_OPTIONS) else {
            panic!()
        };
        assert_eq!(
            m,
            "options.zzzzzzzzzz is not an option (known options: signal)"
        );
    }
}
