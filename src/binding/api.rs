//! `TokenManager#fetch` and `#api` on the JavaScript side: fetch's arguments in (through
//! `fetch.js`, which applies fetch's own rules), a standard `Response` or the API's
//! `response` member out. The HTTP, the token, the origin rule and the 401 retry are in
//! `crate::core::api`, on the same client (proxy, trust, deadline) as token requests.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{JsObjectValue, Uint8ArraySlice, Unknown};
use napi::{Env, JsValue, ValueType};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};

use super::args::{self, Options};
use super::call::{self, rejected};
use super::error::Failure;
use super::instance::{Deferred, Instance};
use super::js;
use crate::core::api::{self, ApiRequest, ApiResponse};
use crate::core::error::AuthError;
use crate::core::manager::TokenManager;

/// The options of `manager.api()`.
const API_OPTIONS: &[&str] = &["method", "query", "json", "signal"];
/// Headers that belong to the connection, not the caller (fetch forbids them too).
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
/// Largest request body we send; Sonetel's requests are small JSON.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// `manager.fetch(input, init)`.
pub fn fetch<'e>(
    env: &'e Env,
    core: &Arc<TokenManager>,
    base: &Url,
    input: Unknown<'e>,
    init: Unknown<'e>,
) -> napi::Result<Unknown<'e>> {
    let (deferred, promise) = match Deferred::new(env) {
        Ok(d) => d,
        Err(f) => return rejected(env, f),
    };
    // Settled by whichever of the two callbacks below runs, once.
    let slot = Rc::new(RefCell::new(Some(deferred)));
    let started = (|| {
        let (prepare, _) = Instance::get(env)?.fetch_helpers(env)?;
        let limit = js::js_number(env, MAX_REQUEST_BODY as f64)?;
        let args = [input, init, js::js_string(env, base.as_str())?, limit];
        let prepared = js::call(env, &prepare, &js::undefined(env)?, &args)
            .ok_or_else(|| js::internal(env, "fetch.js prepare threw"))?;
        let then = js::object(&prepared)
            .and_then(|p| p.get_named_property_unchecked::<Unknown>("then").ok())
            .ok_or_else(|| js::internal(env, "fetch.js prepare gave no promise"))?;
        let (core, base, ok_slot, err_slot) = (
            Arc::clone(core),
            base.clone(),
            Rc::clone(&slot),
            Rc::clone(&slot),
        );
        let on_prepared = env
            .create_function_from_closure::<(), (), _>("sonetelFetchPrepared", move |ctx| {
                let env = *ctx.env;
                if let Some(deferred) = ok_slot.borrow_mut().take() {
                    match ctx.get::<Unknown>(0) {
                        Ok(prepared) => send(&env, &core, &base, deferred, prepared),
                        Err(_) => deferred
                            .settle(&env, Err((js::internal(&env, "no prepared request"), None))),
                    }
                }
                js::clear_exception(&env);
                Ok(())
            })
            .map_err(|_| js::internal(env, "could not create a callback"))?;
        let on_failed = env
            .create_function_from_closure::<(), (), _>("sonetelFetchRefused", move |ctx| {
                let env = *ctx.env;
                if let Some(deferred) = err_slot.borrow_mut().take() {
                    let message = ctx
                        .get::<Unknown>(0)
                        .ok()
                        .and_then(|e| message_of(&env, &e));
                    let message =
                        message.unwrap_or_else(|| "its arguments could not be read".into());
                    let failure = Failure::ArgValue(format!("manager.fetch(): {message}"));
                    deferred.settle(&env, Err((failure, None)));
                }
                js::clear_exception(&env);
                Ok(())
            })
            .map_err(|_| js::internal(env, "could not create a callback"))?;
        js::call(
            env,
            &then,
            &prepared,
            &[on_prepared.to_unknown(), on_failed.to_unknown()],
        )
        .ok_or_else(|| js::internal(env, "could not wait for fetch.js"))?;
        Ok::<(), Failure>(())
    })();
    if let Err(f) = started {
        if let Some(deferred) = slot.borrow_mut().take() {
            deferred.settle(env, Err((f, None)));
        }
    }
    Ok(promise)
}

/// The message of an error fetch's own rules threw (an invalid URL, header or body): a
/// value of JavaScript's own making, read as a data property.
fn message_of(env: &Env, error: &Unknown) -> Option<String> {
    let message = js::object(error)?.get_named_property_unchecked::<Unknown>("message");
    let message = message.ok().or_else(|| {
        js::clear_exception(env);
        None
    })?;
    js::read_utf8(js::string(&message)?, 1024, "message").ok()
}

/// The parts `fetch.js` prepared, checked and sent.
fn send(env: &Env, core: &Arc<TokenManager>, base: &Url, deferred: Deferred, prepared: Unknown) {
    match checked(env, base, &prepared) {
        Ok((request, signal, redirect_error)) => {
            let work = api::fetch(Arc::clone(core), core.request_options().clone(), request);
            call::spawn_into(env, deferred, signal, work, move |env, response| {
                // As fetch's redirect: 'error': only a redirect status is one.
                if redirect_error && matches!(response.status, 301 | 302 | 303 | 307 | 308) {
                    return Err(Failure::Core(AuthError::Http {
                        status: response.status,
                        body: String::new(),
                        retry_after: None,
                    }));
                }
                respond(env, response)
            });
        }
        Err(f) => deferred.settle(env, Err((f, None))),
    }
}

type Checked<'e> = (ApiRequest, Option<Unknown<'e>>, bool);

fn checked<'e>(env: &'e Env, base: &Url, prepared: &Unknown<'e>) -> Result<Checked<'e>, Failure> {
    let object = js::object(prepared).ok_or_else(|| js::internal(env, "no prepared request"))?;
    let get = |name: &str| {
        js::guard(
            env,
            || object.get_named_property_unchecked::<Unknown>(name),
            || js::internal(env, "the prepared request could not be read"),
        )
    };
    let text = |name: &str| -> Result<String, Failure> {
        let value = get(name)?;
        let s = js::string(&value)
            .ok_or_else(|| js::internal(env, "the prepared request is not text"))?;
        js::read_utf8(s, MAX_REQUEST_BODY, name)
    };
    let refused = get("error")?;
    if let Some(message) = js::string(&refused) {
        let message = format!("manager.fetch() {}", js::read_utf8(message, 1024, "error")?);
        let is_type = js::boolean(&get("type")?) == Some(true);
        return Err(if is_type {
            Failure::ArgType(message)
        } else {
            Failure::ArgValue(message)
        });
    }
    let url = api::resolve(base, &text("url")?)
        .map_err(|reason| Failure::ArgValue(format!("manager.fetch() input {reason}")))?;
    let method = Method::from_bytes(text("method")?.as_bytes()).map_err(|_| {
        Failure::ArgValue("manager.fetch() init.method is not a valid method".into())
    })?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&text("headers")?)
        .map_err(|_| js::internal(env, "the prepared headers are not a list"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let bad = || Failure::ArgValue(format!("manager.fetch() header {name} is not valid"));
        let name_h = HeaderName::try_from(name.as_str()).map_err(|_| bad())?;
        let value_h = HeaderValue::try_from(value.as_str()).map_err(|_| bad())?;
        // The connection's own headers are ours to set: a Host of the caller's could
        // route the token to another site on the API's server.
        if CONNECTION_HEADERS.contains(&name_h.as_str()) {
            continue;
        }
        headers.append(name_h, value_h);
    }
    let body = get("body")?;
    let body = match js::kind(&body) {
        ValueType::Null | ValueType::Undefined => None,
        _ => {
            let bytes = js::bytes(&body)
                .ok_or_else(|| js::internal(env, "the prepared body is not bytes"))?;
            if bytes.len() > MAX_REQUEST_BODY {
                return Err(Failure::ArgValue(format!(
                    "manager.fetch() body is larger than {MAX_REQUEST_BODY} bytes"
                )));
            }
            Some(bytes::Bytes::from(bytes))
        }
    };
    let replayable = js::boolean(&get("replayable")?).unwrap_or(false);
    let redirect = text("redirect")?;
    let signal = get("signal")?;
    let signal = (js::kind(&signal) != ValueType::Undefined).then_some(signal);
    let request = ApiRequest {
        method,
        url,
        headers,
        body,
        replayable,
        follow_redirects: redirect == "follow",
    };
    Ok((request, signal, redirect == "error"))
}

/// The standard `Response`, made by `fetch.js`.
fn respond<'e>(env: &'e Env, response: ApiResponse) -> Result<Unknown<'e>, Failure> {
    let (_, make) = Instance::get(env)?.fetch_helpers(env)?;
    // fetch's Response carries statuses 200 to 599 only (Node's own fetch fails on others).
    if !(200..=599).contains(&response.status) {
        return Err(Failure::Core(AuthError::Response {
            status: response.status,
            reason: "a status outside 200 to 599, which a fetch Response cannot carry".into(),
        }));
    }
    // Header bytes as Latin-1, as Node's fetch reads them: every byte is a character.
    let pairs: Vec<(&str, String)> = response
        .headers
        .iter()
        .map(|(name, value)| {
            let text = value.as_bytes().iter().map(|&b| char::from(b)).collect();
            (name.as_str(), text)
        })
        .collect();
    let headers = serde_json::to_string(&pairs).map_err(|_| js::internal(env, "headers"))?;
    let reason = StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let body = Uint8ArraySlice::from_data(env, response.body)
        .map_err(|_| js::internal(env, "could not make the body"))?;
    let redirected = js::boolean_value(env, response.redirected)?;
    let mut url = response.url;
    url.set_fragment(None);
    let args = [
        js::js_number(env, f64::from(response.status))?,
        js::js_string(env, reason)?,
        js::js_string(env, &headers)?,
        body.to_unknown(),
        js::js_string(env, url.as_str())?,
        redirected,
    ];
    js::call(env, &make, &js::undefined(env)?, &args)
        .ok_or_else(|| js::internal(env, "could not make the Response"))
}

/// `manager.api(path, { method, query, json, signal })`.
pub fn api<'e>(
    env: &'e Env,
    core: &Arc<TokenManager>,
    base: &Url,
    path: Unknown<'e>,
    options: Unknown<'e>,
) -> napi::Result<Unknown<'e>> {
    let checked = (|| {
        let path = js::string(&path).ok_or_else(|| {
            Failure::ArgType(format!(
                "path must be a string, received {}",
                js::type_name(&path)
            ))
        })?;
        let path = js::read_utf8(path, 8 * 1024, "path")?;
        let mut url = api::resolve(base, &path)
            .map_err(|reason| Failure::ArgValue(format!("path {reason}")))?;
        let options = Options::read(env, &options, "options", API_OPTIONS)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut body = None;
        let mut method = Method::GET;
        let mut signal = None;
        if let Some(o) = &options {
            if let Some(json) = o.field("json") {
                let text = Instance::get(env)?
                    .json_stringify(env, json, MAX_REQUEST_BODY)
                    .ok_or_else(|| {
                        Failure::ArgValue("options.json could not be turned into JSON".into())
                    })?;
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                body = Some(bytes::Bytes::from(text));
                method = Method::POST;
            }
            if let Some(m) = o.text("method")? {
                // A REST API's methods; CONNECT, TRACE and the like are not calls to it.
                const METHODS: &[&str] =
                    &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
                let upper = m.to_ascii_uppercase();
                method = METHODS
                    .contains(&upper.as_str())
                    .then(|| Method::from_bytes(upper.as_bytes()).ok())
                    .flatten()
                    .ok_or_else(|| {
                        Failure::ArgValue(format!(
                            "options.method must be one of {}",
                            METHODS.join(", ")
                        ))
                    })?;
            }
            if let Some(query) = o.field("query") {
                add_query(env, &mut url, &query)?;
            }
            signal = o.signal()?;
        }
        Ok((
            ApiRequest {
                method,
                url,
                headers,
                body,
                replayable: true,
                follow_redirects: true,
            },
            signal,
        ))
    })();
    let (request, signal) = match checked {
        Ok(c) => c,
        Err(f) => return rejected(env, f),
    };
    let (core, options) = (Arc::clone(core), core.request_options().clone());
    call::spawn(
        env,
        signal,
        async move { api::envelope(&api::fetch(core, options, request).await?) },
        |env, json| {
            Instance::get(env)?
                .json_parse(env, &json)
                .ok_or_else(|| js::internal(env, "JSON.parse failed"))
        },
    )
}

/// `query`: an object of strings, numbers and booleans (or arrays of them), added to the
/// URL's query string.
fn add_query(env: &Env, url: &mut Url, query: &Unknown) -> Result<(), Failure> {
    let Some(o) = Options::read_any(env, query, "options.query")? else {
        return Ok(());
    };
    if o.fields().next().is_none() {
        return Ok(()); // no bare "?"
    }
    let mut pairs = url.query_pairs_mut();
    for (name, value) in o.fields() {
        let mut one = |v: &Unknown| -> Result<(), Failure> {
            let text = match js::kind(v) {
                ValueType::String => js::read_utf8(js::string(v).ok_or_else(|| js::internal(env, "string"))?, 8 * 1024, name)?,
                ValueType::Number => {
                    let n = js::number(v).unwrap_or(f64::NAN);
                    if !n.is_finite() {
                        return Err(Failure::ArgValue(format!(
                            "options.query.{name} must be a finite number"
                        )));
                    }
                    if n.fract() == 0.0 && n.abs() < 9e15 { format!("{}", n as i64) } else { n.to_string() }
                }
                ValueType::Boolean => js::boolean(v).unwrap_or(false).to_string(),
                _ => {
                    return Err(Failure::ArgType(format!(
                        "options.query.{name} must be a string, number or boolean (or an array of them)"
                    )))
                }
            };
            pairs.append_pair(name, &text);
            Ok(())
        };
        if value.is_array().unwrap_or(false) {
            for item in args::array_items(env, value, &format!("options.query.{name}"))? {
                one(&item)?;
            }
        } else {
            one(value)?;
        }
    }
    drop(pairs);
    Ok(())
}
