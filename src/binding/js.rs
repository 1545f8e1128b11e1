//! Small helpers over raw N-API: reading values without ever throwing, building the
//! documented error objects, and settled promises.

use std::ptr;

use napi::{sys, Env, JsValue};

use crate::core::error::AuthError;

pub type Raw = sys::napi_value;

/// Clears an exception left pending by a user getter or callback, so we can reject instead.
pub fn clear_exception(env: sys::napi_env) {
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        let mut ignored = ptr::null_mut();
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut ignored) };
    }
}

pub fn type_of(env: sys::napi_env, value: Raw) -> sys::napi_valuetype {
    let mut t = 0;
    unsafe { sys::napi_typeof(env, value, &mut t) };
    t
}

/// The JavaScript name of a value's type, for messages that must not show the value itself.
pub fn type_name(env: sys::napi_env, value: Raw) -> &'static str {
    match type_of(env, value) {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "boolean",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_string => "string",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_function => "function",
        sys::ValueType::napi_bigint => "bigint",
        _ => "object",
    }
}

pub fn is_undefined(env: sys::napi_env, value: Raw) -> bool {
    value.is_null() || type_of(env, value) == sys::ValueType::napi_undefined
}

/// Reads `object[name]`. A getter that throws becomes an argument error, not an exception.
pub fn get_property(
    env: sys::napi_env,
    object: Raw,
    name: &str,
    what: &str,
) -> Result<Raw, AuthError> {
    let mut key = ptr::null_mut();
    let mut value = ptr::null_mut();
    let status = unsafe {
        sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut key);
        sys::napi_get_property(env, object, key, &mut value)
    };
    if status != sys::Status::napi_ok {
        clear_exception(env);
        return Err(AuthError::InvalidArgValue(format!(
            "{what}.{name} could not be read (its getter threw)"
        )));
    }
    Ok(value)
}

pub fn string(env: sys::napi_env, text: &str) -> Raw {
    let mut value = ptr::null_mut();
    unsafe {
        sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value)
    };
    value
}

pub fn number(env: sys::napi_env, n: f64) -> Raw {
    let mut value = ptr::null_mut();
    unsafe { sys::napi_create_double(env, n, &mut value) };
    value
}

pub fn set(env: sys::napi_env, object: Raw, name: &str, value: Raw) {
    let key = string(env, name);
    unsafe { sys::napi_set_property(env, object, key, value) };
}

pub fn get_f64(env: sys::napi_env, value: Raw) -> f64 {
    let mut n = 0.0;
    unsafe { sys::napi_get_value_double(env, value, &mut n) };
    n
}

pub fn get_bool(env: sys::napi_env, value: Raw) -> bool {
    let mut b = false;
    unsafe { sys::napi_get_value_bool(env, value, &mut b) };
    b
}

/// The bytes of a `Buffer` or any `Uint8Array`, or None for anything else.
pub fn bytes_of(env: sys::napi_env, value: Raw) -> Option<Vec<u8>> {
    let mut is_typed = false;
    unsafe { sys::napi_is_typedarray(env, value, &mut is_typed) };
    if !is_typed {
        return None;
    }
    let mut kind = 0;
    let mut len = 0usize;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut offset = 0usize;
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut kind,
            &mut len,
            &mut data,
            &mut buffer,
            &mut offset,
        )
    };
    if status != sys::Status::napi_ok || kind != sys::TypedarrayType::uint8_array {
        return None;
    }
    if len == 0 || data.is_null() {
        return Some(Vec::new());
    }
    Some(unsafe { std::slice::from_raw_parts(data as *const u8, len) }.to_vec())
}

/// Reads a JavaScript string as UTF-16 so that unpaired surrogates are caught, not
/// silently replaced (which would send a different password than the one given).
pub fn read_utf16(
    env: sys::napi_env,
    value: Raw,
    max_len: usize,
    what: &str,
) -> Result<String, AuthError> {
    let mut len = 0usize;
    unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut len) };
    if len > max_len {
        return Err(AuthError::InvalidArgValue(format!(
            "{what} is longer than {max_len} characters"
        )));
    }
    let mut units = vec![0u16; len + 1];
    let mut copied = 0usize;
    unsafe {
        sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), len + 1, &mut copied)
    };
    units.truncate(copied);
    let text = String::from_utf16(&units)
        .map_err(|_| AuthError::InvalidArgValue(format!("{what} contains an unpaired surrogate")));
    units.fill(0);
    text
}

/// Reads a JavaScript string as UTF-8 (lone surrogates become U+FFFD), for values that
/// are not secrets and are checked afterwards anyway: URLs and PEM text.
pub fn read_utf8(
    env: sys::napi_env,
    value: Raw,
    max_len: usize,
    what: &str,
) -> Result<String, AuthError> {
    let mut len = 0usize;
    unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) };
    if len > max_len {
        return Err(AuthError::InvalidArgValue(format!(
            "{what} is longer than {max_len} bytes"
        )));
    }
    let mut bytes = vec![0u8; len + 1];
    let mut copied = 0usize;
    unsafe {
        sys::napi_get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), len + 1, &mut copied)
    };
    bytes.truncate(copied);
    String::from_utf8(bytes)
        .map_err(|_| AuthError::InvalidArgValue(format!("{what} is not valid text")))
}

/// The JavaScript error for `e`: an `Error` (a `TypeError` for argument errors) with the
/// stable `code` and the properties the design table lists.
pub fn error_value(env: sys::napi_env, e: &AuthError, abort_reason: Option<Raw>) -> Raw {
    let code = string(env, e.code());
    let message = string(env, &e.to_string());
    let mut error = ptr::null_mut();
    unsafe {
        match e {
            AuthError::InvalidArgType(_) | AuthError::InvalidArgValue(_) => {
                sys::napi_create_type_error(env, code, message, &mut error)
            }
            _ => sys::napi_create_error(env, code, message, &mut error),
        }
    };
    if let Some(status) = e.status() {
        set(env, error, "status", number(env, status as f64));
    }
    match e {
        AuthError::Auth {
            error: oauth_error,
            error_description,
            ..
        } => {
            set(env, error, "error", string(env, oauth_error));
            if let Some(d) = error_description {
                set(env, error, "error_description", string(env, d));
            }
        }
        AuthError::Http { body, .. } => set(env, error, "body", string(env, body)),
        AuthError::Aborted => {
            set(env, error, "name", string(env, "AbortError"));
            if let Some(reason) = abort_reason.filter(|r| !is_undefined(env, *r)) {
                set(env, error, "cause", reason);
            }
        }
        _ => {}
    }
    error
}

/// A promise already settled: resolved with `value`, or rejected with it.
pub fn settled_promise(env: &Env, value: Raw, resolve: bool) -> Raw {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    unsafe {
        sys::napi_create_promise(env.raw(), &mut deferred, &mut promise);
        if resolve {
            sys::napi_resolve_deferred(env.raw(), deferred, value);
        } else {
            sys::napi_reject_deferred(env.raw(), deferred, value);
        }
    }
    promise
}

/// Calls `f(arg)` and swallows whatever it throws or rejects with: the app's callback
/// must not break our promise chain nor leave an unhandled rejection behind.
pub fn call_ignoring_errors(env: &Env, f: Raw, arg: Raw) {
    let raw = env.raw();
    let mut undefined = ptr::null_mut();
    let mut result = ptr::null_mut();
    unsafe { sys::napi_get_undefined(raw, &mut undefined) };
    let status = unsafe { sys::napi_call_function(raw, undefined, f, 1, &arg, &mut result) };
    if status != sys::Status::napi_ok {
        clear_exception(raw);
        return;
    }
    if type_of(raw, result) != sys::ValueType::napi_object {
        return;
    }
    let Ok(catch) = get_property(raw, result, "catch", "onToken()") else {
        return;
    };
    if type_of(raw, catch) == sys::ValueType::napi_function {
        if let Ok(noop) = env.create_function_from_closure::<(), (), _>("ignore", |_| Ok(())) {
            let noop = noop.raw();
            let mut ignored = ptr::null_mut();
            if unsafe { sys::napi_call_function(raw, result, catch, 1, &noop, &mut ignored) }
                != sys::Status::napi_ok
            {
                clear_exception(raw);
            }
        }
    }
}

thread_local! {
    /// `JSON.parse` of this thread's environment, looked up once.
    static JSON_PARSE: std::cell::RefCell<Option<(sys::napi_env, Held)>> = const { std::cell::RefCell::new(None) };
}

/// Drops what this thread cached for an environment that is going away.
pub fn forget_env_state() {
    JSON_PARSE.with(|slot| slot.borrow_mut().take());
}

/// `JSON.parse(text)`, or None if it threw.
pub fn json_parse(env: sys::napi_env, text: &str) -> Option<Raw> {
    let parse = JSON_PARSE.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some((e, held)) = slot.as_ref() {
            if *e == env {
                return Some(held.value());
            }
        }
        let mut global = ptr::null_mut();
        unsafe { sys::napi_get_global(env, &mut global) };
        let json = get_property(env, global, "JSON", "globalThis").ok()?;
        let parse = get_property(env, json, "parse", "JSON").ok()?;
        *slot = Some((env, Held::new(env, parse)));
        Some(parse)
    })?;
    let mut undefined = ptr::null_mut();
    let mut result = ptr::null_mut();
    let arg = string(env, text);
    unsafe { sys::napi_get_undefined(env, &mut undefined) };
    if unsafe { sys::napi_call_function(env, undefined, parse, 1, &arg, &mut result) }
        != sys::Status::napi_ok
    {
        clear_exception(env);
        return None;
    }
    Some(result)
}

/// A strong reference to a JavaScript value, for values a pending call must keep alive.
pub struct Held {
    env: sys::napi_env,
    reference: sys::napi_ref,
}

impl Held {
    pub fn new(env: sys::napi_env, value: Raw) -> Held {
        let mut reference = ptr::null_mut();
        unsafe { sys::napi_create_reference(env, value, 1, &mut reference) };
        Held { env, reference }
    }

    pub fn value(&self) -> Raw {
        let mut value = ptr::null_mut();
        unsafe { sys::napi_get_reference_value(self.env, self.reference, &mut value) };
        value
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Held values live in closures that run on the JavaScript thread that made them.
        unsafe { sys::napi_delete_reference(self.env, self.reference) };
    }
}
