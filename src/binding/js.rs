//! Reading and making JavaScript values without ever leaving an exception pending, on
//! napi-rs's typed API. The few raw N-API calls napi-rs has no safe form of live here, each
//! with the invariant it relies on.

use std::ptr;

use napi::bindgen_prelude::{
    FromNapiValue, Function, JsObjectValue, Object, Uint8ArraySlice, Unknown,
};
use napi::{sys, Env, JsString, JsValue, Property, PropertyAttributes, ValueType};

use super::error::Failure;

/// A value's type; `Unknown` when even asking failed.
pub fn kind(value: &Unknown) -> ValueType {
    value.get_type().unwrap_or(ValueType::Unknown)
}

/// The JavaScript name of a value's type, for messages that must not show the value.
pub fn type_name(value: &Unknown) -> &'static str {
    match kind(value) {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Function => "function",
        ValueType::BigInt => "bigint",
        _ => "object",
    }
}

pub fn is_nullish(value: &Unknown) -> bool {
    matches!(kind(value), ValueType::Undefined | ValueType::Null)
}

/// Drops an exception a user getter, Proxy trap or callback left pending, so that the
/// call can settle with one of our errors instead.
pub fn clear_exception(env: &Env) {
    let mut pending = false;
    // SAFETY: `env` is the environment of the callback running on this thread, and
    // `pending` outlives the call. napi-rs has no public way to clear an exception.
    let status = unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) };
    if status == sys::Status::napi_ok && pending {
        let mut ignored = ptr::null_mut();
        // SAFETY: as above; the exception value is dropped unread, since reading it could
        // run more user code.
        unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut ignored) };
    }
}

/// Runs `f`; a napi-rs error (a throwing getter, a failed call) becomes `err`, with any
/// exception it left pending cleared.
pub fn guard<T>(
    env: &Env,
    f: impl FnOnce() -> napi::Result<T>,
    err: impl FnOnce() -> Failure,
) -> Result<T, Failure> {
    f().map_err(|_| {
        clear_exception(env);
        err()
    })
}

/// `value` as an object (functions included), or None.
pub fn object<'e>(value: &Unknown<'e>) -> Option<Object<'e>> {
    matches!(kind(value), ValueType::Object | ValueType::Function)
        .then(|| Object::from_raw(value.value().env, value.raw()))
}

/// Whether `object`'s prototype is `Object.prototype` (of this realm) or null, as for an
/// object literal or `Object.create(null)`. A Proxy answers for its target.
pub fn is_plain_object(env: &Env, object: &Object) -> bool {
    let plain = (|| {
        let proto = object.get_prototype().ok()?;
        if matches!(kind(&proto), ValueType::Null) {
            return Some(true);
        }
        let literal = Object::new(env).ok()?;
        let object_prototype = literal.get_prototype().ok()?;
        env.strict_equals(proto, object_prototype).ok()
    })();
    clear_exception(env);
    plain.unwrap_or(false)
}

/// `Promise.prototype.then` as the engine made it, read from a promise of our own.
pub fn promise_then(env: &Env) -> napi::Result<Unknown<'_>> {
    let fail = |_| napi::Error::from_reason("could not make a promise");
    let (deferred, promise) = super::instance::Deferred::new(env).map_err(fail)?;
    deferred.settle(env, Ok(undefined(env).map_err(fail)?));
    let proto = object(&promise)
        .ok_or_else(|| napi::Error::from_reason("not an object"))?
        .get_prototype()?;
    object(&proto)
        .ok_or_else(|| napi::Error::from_reason("no prototype"))?
        .get_named_property_unchecked::<Unknown>("then")
}

/// `value` as a function, or None. Its argument types say nothing: it is called through
/// [`call`] only.
pub fn function<'e>(
    value: &Unknown<'e>,
) -> Option<Function<'e, Unknown<'static>, Unknown<'static>>> {
    if kind(value) != ValueType::Function {
        return None;
    }
    // SAFETY: the value was just checked to be a function, which is all `Function` holds.
    unsafe { value.cast::<Function<Unknown<'static>, Unknown<'static>>>() }.ok()
}

/// `value` as a string, or None.
pub fn string<'e>(value: &Unknown<'e>) -> Option<JsString<'e>> {
    if kind(value) != ValueType::String {
        return None;
    }
    // SAFETY: the value was just checked to be a string, which is all `JsString` holds.
    unsafe { value.cast::<JsString>() }.ok()
}

/// `value` as a number, or None.
pub fn number(value: &Unknown) -> Option<f64> {
    if kind(value) != ValueType::Number {
        return None;
    }
    // SAFETY: the value was just checked to be a number; `f64` reads it with
    // `napi_get_value_double`.
    unsafe { value.cast::<f64>() }.ok()
}

/// `value` as a boolean, or None.
pub fn boolean(value: &Unknown) -> Option<bool> {
    if kind(value) != ValueType::Boolean {
        return None;
    }
    // SAFETY: the value was just checked to be a boolean.
    unsafe { value.cast::<bool>() }.ok()
}

/// A copy of the bytes of a `Buffer` or any `Uint8Array`, or None for anything else.
pub fn bytes(value: &Unknown) -> Option<Vec<u8>> {
    if !value.is_typedarray().unwrap_or(false) {
        return None;
    }
    let env = value.value().env;
    // SAFETY: `value` is a typed array of this environment; `Uint8ArraySlice` checks that
    // it is a Uint8Array and borrows its bytes only for the copy below.
    let slice = unsafe { Uint8ArraySlice::from_napi_value(env, value.raw()) }.ok()?;
    Some(slice.to_vec())
}

/// Reads a string as UTF-16 so that unpaired surrogates are caught, not silently
/// replaced (which would send a different password than the one given). The copy is
/// wiped: napi-rs's own UTF-16 reader would leave it in freed memory.
pub fn read_utf16(value: JsString, max_len: usize, what: &str) -> Result<String, Failure> {
    let too_long = || Failure::ArgValue(format!("{what} is longer than {max_len} characters"));
    let len = value.utf16_len().map_err(|_| too_long())?;
    if len > max_len {
        return Err(too_long());
    }
    let mut units = vec![0u16; len + 1];
    let mut copied = 0usize;
    // SAFETY: `value` is a string of the environment of the callback running on this
    // thread; `units` has room for `len + 1` code units, the length N-API is told.
    let status = unsafe {
        sys::napi_get_value_string_utf16(
            value.value().env,
            value.raw(),
            units.as_mut_ptr(),
            len + 1,
            &mut copied,
        )
    };
    let text =
        (status == sys::Status::napi_ok).then(|| String::from_utf16(&units[..copied.min(len)]));
    zeroize::Zeroize::zeroize(&mut units);
    match text {
        Some(Ok(text)) => Ok(text),
        Some(Err(_)) => Err(Failure::ArgValue(format!(
            "{what} contains an unpaired surrogate"
        ))),
        None => Err(Failure::ArgValue(format!("{what} could not be read"))),
    }
}

/// Reads a string as UTF-8 (lone surrogates become U+FFFD), for values that are not
/// secrets and are checked afterwards anyway: URLs and PEM text.
pub fn read_utf8(value: JsString, max_len: usize, what: &str) -> Result<String, Failure> {
    let too_long = || Failure::ArgValue(format!("{what} is longer than {max_len} bytes"));
    if value.utf8_len().map_err(|_| too_long())? > max_len {
        return Err(too_long());
    }
    value
        .into_utf8()
        .and_then(|s| s.into_owned())
        .map_err(|_| Failure::ArgValue(format!("{what} is not valid text")))
}

/// `f.call(recv, ...args)`, or None if it threw. napi-rs's `Function::call` would inspect
/// what was thrown (running the thrower's `toString` and following its `cause` chain,
/// without bound); a value thrown by user code is dropped here unread.
pub fn call<'e>(
    env: &'e Env,
    f: &Unknown<'e>,
    recv: &Unknown<'e>,
    args: &[Unknown<'e>],
) -> Option<Unknown<'e>> {
    call_catching(env, f, recv, args).and_then(Result::ok)
}

/// Like [`call`], but hands back what was thrown (Err), for the app's own callbacks whose
/// failures we report. None when even that could not be had.
pub fn call_catching<'e>(
    env: &'e Env,
    f: &Unknown<'e>,
    recv: &Unknown<'e>,
    args: &[Unknown<'e>],
) -> Option<Result<Unknown<'e>, Unknown<'e>>> {
    let raw_args: Vec<sys::napi_value> = args.iter().map(|a| a.raw()).collect();
    let mut result = ptr::null_mut();
    // SAFETY: every value belongs to `env`, the environment of the callback running on
    // this thread; `raw_args` and `result` outlive the call.
    let status = unsafe {
        sys::napi_call_function(
            env.raw(),
            recv.raw(),
            f.raw(),
            raw_args.len(),
            raw_args.as_ptr(),
            &mut result,
        )
    };
    if status == sys::Status::napi_ok {
        // SAFETY: N-API returned `result` for this environment.
        return Some(Ok(unsafe {
            Unknown::from_raw_unchecked(env.raw(), result)
        }));
    }
    let mut thrown = ptr::null_mut();
    // SAFETY: `env` is the environment of this thread's callback; `thrown` outlives the call.
    let status = unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut thrown) };
    if status != sys::Status::napi_ok || thrown.is_null() {
        clear_exception(env);
        return None;
    }
    // SAFETY: N-API returned `thrown` for this environment.
    Some(Err(unsafe {
        Unknown::from_raw_unchecked(env.raw(), thrown)
    }))
}

/// `undefined`.
pub fn undefined(env: &Env) -> Result<Unknown<'_>, Failure> {
    let mut raw = ptr::null_mut();
    // SAFETY: `env` is the environment of the callback running on this thread and `raw`
    // outlives the call.
    let status = unsafe { sys::napi_get_undefined(env.raw(), &mut raw) };
    if status != sys::Status::napi_ok {
        return Err(internal(env, "could not get undefined"));
    }
    // SAFETY: N-API returned `raw` for this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
}

/// A JavaScript string.
pub fn js_string<'e>(env: &'e Env, text: &str) -> Result<Unknown<'e>, Failure> {
    env.create_string(text)
        .map(|s| s.to_unknown())
        .map_err(|_| internal(env, "could not create a string"))
}

/// A JavaScript boolean.
pub fn boolean_value(env: &Env, b: bool) -> Result<Unknown<'_>, Failure> {
    let mut raw = ptr::null_mut();
    // SAFETY: `env` is the environment of this thread's callback; `raw` outlives the call.
    let status = unsafe { sys::napi_get_boolean(env.raw(), b, &mut raw) };
    if status != sys::Status::napi_ok {
        return Err(internal(env, "could not create a boolean"));
    }
    // SAFETY: N-API returned `raw` for this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
}

/// A JavaScript number.
pub fn js_number(env: &Env, n: f64) -> Result<Unknown<'_>, Failure> {
    env.create_double(n)
        .map(|n| n.to_unknown())
        .map_err(|_| internal(env, "could not create a number"))
}

/// An internal failure, with any exception left pending cleared.
pub fn internal(env: &Env, what: &str) -> Failure {
    clear_exception(env);
    Failure::Core(crate::core::error::AuthError::Internal(what.to_owned()))
}

/// Defines own data properties (writable, enumerable, configurable) on `object`.
/// Defining, unlike assigning, runs no setter that an app or attacker put on
/// `Object.prototype` and works whatever a frozen prototype says.
pub fn define<'e>(
    env: &Env,
    object: &mut impl JsObjectValue<'e>,
    props: &[(&str, Unknown)],
) -> Result<(), Failure> {
    let attributes = PropertyAttributes::Writable
        | PropertyAttributes::Enumerable
        | PropertyAttributes::Configurable;
    let mut list = Vec::with_capacity(props.len());
    for (name, value) in props {
        let p = Property::new()
            .with_utf8_name(name)
            .map_err(|_| internal(env, "bad property name"))?
            .with_value(value)
            .with_property_attributes(attributes);
        list.push(p);
    }
    object
        .define_properties(&list)
        .map_err(|_| internal(env, "could not define error properties"))
}
