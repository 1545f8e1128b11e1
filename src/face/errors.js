'use strict'
// Every failure the package reports. Argument errors are TypeErrors with Node's codes, an
// abort is an AbortError (`ABORT_ERR`), and everything else is a SonetelAuthError with a
// stable `code` and the properties of its kind. Errors are made by the entry point that
// rejects, after its await, so their stack shows the caller's async frames. Properties are
// defined, never assigned: nothing on Object.prototype or Error.prototype can stop them.

const { defineProperty, hasOwn } = Object
const { parse, stringify } = JSON
const captureStackTrace = Error.captureStackTrace

/**
 * `object` with no prototype: what Object.prototype carries (a `get` that would make a
 * descriptor an accessor, a `then` that would make a result a thenable) is not in it.
 * @template T
 * @param {T} object
 * @returns {T}
 */
function bare(object) {
  return Object.setPrototypeOf(object, null)
}

/** A data property's descriptor. */
function data(value, enumerable = true) {
  return bare({ value, writable: true, enumerable, configurable: true })
}

function define(target, props) {
  for (const name of Object.keys(props)) {
    const value = props[name]
    if (value !== undefined) defineProperty(target, name, data(value))
  }
  return target
}

/**
 * The package's own failures: the server refused, answered oddly or not at all, the
 * deadline passed, the manager was closed, or a bug in this package.
 */
class SonetelAuthError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   * @param {Record<string, unknown>} [props] the properties of its kind (`status`, …)
   * @param {unknown} [cause]
   */
  constructor(message, code, props, cause) {
    super(message, cause === undefined ? undefined : bare({ cause }))
    define(this, { code, ...props })
  }
}
defineProperty(SonetelAuthError.prototype, 'name', data('SonetelAuthError', false))

// The properties each code carries, as the binding sends them.
const KIND_PROPS = ['status', 'error', 'error_description', 'retryAfterMs', 'body', 'apiCode', 'detail', 'endpoint']
// What `toJSON` shows: the kind's properties and the request a call was making.
const SHOWN = [...KIND_PROPS, 'method', 'path']

/** A primitive own data property of `value` (see `own`), else undefined. */
function shownValue(value, name) {
  try {
    const v = own(value, name)
    return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * What `JSON.stringify(error)` gives, as loggers (pino, winston) serialise errors: name,
 * code, message, the documented properties and the cause's name and code. The message
 * and properties hold no secret (see `withoutUser` and the core's scrubbing); neither
 * does this, and the stack stays out.
 * @this {Error}
 */
function errorJson() {
  const out = { name: String(this.name), code: shownValue(this, 'code'), message: String(this.message) }
  for (const name of SHOWN) {
    const v = shownValue(this, name)
    if (v !== undefined) out[name] = v
  }
  const cause = Object.getOwnPropertyDescriptor(this, 'cause')?.value
  if (typeof cause === 'object' && cause !== null) {
    const shown = {}
    try {
      // The name is inherited (Error.prototype.name, DOMException's getter); a signal's
      // reason may be anything, so nothing it does may escape.
      if (typeof cause.name === 'string') shown.name = cause.name
    } catch {
      // Left out.
    }
    for (const name of ['code', 'syscall']) {
      const v = shownValue(cause, name)
      if (v !== undefined) shown[name] = v
    }
    out.cause = shown
  }
  return out
}
defineProperty(SonetelAuthError.prototype, 'toJSON', data(errorJson, false))

/** @param {string} message */
function argTypeError(message) {
  return serialisable(define(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' }))
}

/** @param {string} message */
function argValueError(message) {
  return serialisable(define(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' }))
}

/** What a cancelled call rejects with: `cause` is the signal's reason. */
function abortError(reason) {
  const error = new Error('The operation was aborted', reason === undefined ? undefined : bare({ cause: reason }))
  return serialisable(define(error, { code: 'ABORT_ERR', name: 'AbortError' }))
}

/** An error of a built-in class, with our `toJSON` as its own (the prototypes are not ours). */
function serialisable(error) {
  defineProperty(error, 'toJSON', data(errorJson, false))
  return error
}

// Node's name for each kind of network failure the core tells apart, and the system call.
const NETWORK_CODES = {
  ConnectionRefused: ['ECONNREFUSED', 'connect'],
  HostNotFound: ['ENOTFOUND', 'getaddrinfo'],
  DnsTemporary: ['EAI_AGAIN', 'getaddrinfo'],
  ConnectionReset: ['ECONNRESET', 'read'],
  TimedOut: ['ETIMEDOUT', 'connect'],
  HostUnreachable: ['EHOSTUNREACH', 'connect'],
  NetworkUnreachable: ['ENETUNREACH', 'connect'],
  CertExpired: ['CERT_HAS_EXPIRED'],
  CertNotYetValid: ['CERT_NOT_YET_VALID'],
  CertUnknownIssuer: ['UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  CertWrongName: ['ERR_TLS_CERT_ALTNAME_INVALID'],
  CertBadSignature: ['CERT_SIGNATURE_FAILURE'],
  CertRevoked: ['CERT_REVOKED'],
  Tls: ['EPROTO'],
}

/** A network failure's `cause`, shaped like Node's own system errors (undici's `cause`). */
function networkCause(d) {
  const [code, syscall] = hasOwn(NETWORK_CODES, d.kind) ? NETWORK_CODES[d.kind] : ['UNKNOWN']
  const place = d.port == null ? String(d.hostname ?? '') : `${d.hostname}:${d.port}`
  const cause = new Error(syscall === undefined ? `${code}: ${d.message}` : `${syscall} ${code} ${place}`)
  return define(cause, { code, syscall, hostname: d.hostname ?? undefined, port: d.port ?? undefined })
}

/**
 * `message` without the user name in any form a server may echo it in (as sent, URL-
 * or form-encoded, HTML- or JSON-escaped): messages end up in logs. The core masks any
 * e-mail address already; this also covers a user name that is not one.
 */
function withoutUser(message, user) {
  if (typeof user !== 'string' || user.length < 3) return message
  const strict = encodeURIComponent(user).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  const form = new URLSearchParams([['', user]]).toString().slice(1)
  const html = user.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
  const forms = new Set([user, user.normalize('NFC'), user.normalize('NFD'), encodeURIComponent(user), strict, form,
    ...[html.replace(/'/g, '&#39;'), html.replace(/'/g, '&apos;'), html.replace(/'/g, '&#x27;')].flatMap((h) => [h, h.replace(/@/g, '&#64;'), h.replace(/@/g, '&#x40;')]),
    stringify(user).slice(1, -1)])
  let out = message
  // Longest first, and case aside: a server may lower-case what it echoes.
  for (const f of [...forms].sort((x, y) => y.length - x.length)) {
    if (f.length >= 3) out = out.replace(new RegExp(f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), '[user name]')
  }
  return out
}

/**
 * The error for a binding's error text (`e{…}`). Its stack starts below `site` (the
 * function that makes it, by default this one); `user`, the caller's user name, is kept
 * out of its message; `request` (`{ method, path }`) is the API request a call made,
 * named in the message and as properties.
 * @param {string} text
 * @param {Function} [site]
 * @param {string} [user]
 * @param {{ method: string, path: string }} [request]
 */
function fromText(text, site = fromText, user = undefined, request = undefined) {
  let d
  try {
    d = parse(text.slice(1))
  } catch {
    d = { code: 'ERR_SONETEL_INTERNAL', message: 'internal error in sonetel-auth: an unreadable error' }
  }
  let error
  if (d.code === 'ERR_INVALID_ARG_TYPE') error = argTypeError(d.message)
  else if (d.code === 'ERR_INVALID_ARG_VALUE') error = argValueError(d.message)
  else if (d.code === 'ABORT_ERR') error = abortError(undefined)
  else {
    const props = Object.create(null)
    for (const name of KIND_PROPS) if (hasOwn(d, name)) props[name] = d[name]
    const cause = hasOwn(d, 'cause') && d.cause ? networkCause(d.cause) : undefined
    let message = String(d.message)
    if (request !== undefined) {
      props.method = request.method
      props.path = request.path
      const where = props.endpoint === 'token' ? ', getting its token from the token endpoint' : props.endpoint === 'api' ? ', at the API' : ''
      message += ` (${request.method} ${request.path}${where})`
    }
    error = new SonetelAuthError(withoutUser(message, user), String(d.code), props, cause)
  }
  if (captureStackTrace) captureStackTrace(error, site)
  return error
}

// The properties each code promises, for isSonetelAuthError.
const isNumber = (v) => typeof v === 'number'
const isText = (v) => typeof v === 'string'
const SHAPES = {
  ERR_SONETEL_AUTH: { status: isNumber, error: isText, error_description: [isText], retryAfterMs: [isNumber] },
  ERR_SONETEL_HTTP: { status: isNumber, body: isText, retryAfterMs: [isNumber] },
  ERR_SONETEL_RESPONSE: { status: isNumber },
  ERR_SONETEL_API: { status: isNumber, apiCode: [isText], detail: [isText], retryAfterMs: [isNumber] },
  ERR_SONETEL_TIMEOUT: {},
  ERR_SONETEL_NETWORK: {},
  ERR_SONETEL_INTERNAL: {},
  ERR_SONETEL_CLOSED: {},
}

/** An own data property's value; undefined for an accessor (it is not run). */
function own(value, name) {
  const d = Object.getOwnPropertyDescriptor(value, name)
  return d === undefined ? undefined : d.value
}

/**
 * Whether `value` is one of this package's errors: an Error with one of our codes (its
 * own property) and the own properties that code promises. Works across realms.
 * @param {unknown} value
 * @returns {value is import('../../index').SonetelAuthError | import('../../index').SonetelArgumentError | import('../../index').SonetelAbortError}
 */
function isSonetelAuthError(value) {
  try {
    if (typeof value !== 'object' || value === null) return false
    if (!(value instanceof Error) && Object.prototype.toString.call(value) !== '[object Error]') return false
    const code = own(value, 'code')
    const { name } = /** @type {{ name?: unknown }} */ (value)
    if (code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_ARG_VALUE') return name === 'TypeError'
    if (code === 'ABORT_ERR') return name === 'AbortError'
    const shape = hasOwn(SHAPES, code) ? SHAPES[code] : undefined
    if (shape === undefined) return false
    for (const name of Object.keys(shape)) {
      const check = shape[name]
      const v = own(value, name)
      if (Array.isArray(check) ? v !== undefined && !check[0](v) : !check(v)) return false
    }
    return true
  } catch {
    return false
  }
}

module.exports = { SonetelAuthError, argTypeError, argValueError, abortError, fromText, isSonetelAuthError, define, bare, data }
