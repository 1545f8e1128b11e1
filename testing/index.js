'use strict'
// sonetel-auth/testing: local stand-ins for Sonetel's token endpoint and REST API, for the
// tests of code that uses sonetel-auth. They behave as the real service does (JWTs with
// acc_id, user_id and user_name; Spring's OAuth errors; the {"status","response"}
// envelope, with failures as HTTP 200) and can be told to misbehave. Our own tests use
// them through this same export.

const http = require('node:http')
const { startSonetelServer, DEFAULT_USERS } = require('./sonetel-server.js')
const { startSonetelApi } = require('./sonetel-api.js')
const { testCertificates } = require('./certs.js')

/** Our own tests' paths on the API (`/test/echo`, …); not for users, so not in the types. */
const TEST_HOOKS = Symbol.for('sonetel-auth.testing.hooks')
const [DEFAULT_USERNAME, DEFAULT_PASSWORD] = Object.entries(DEFAULT_USERS)[0]
const OPTIONS = ['username', 'password', 'users', 'accessTokenLifetime', 'refreshTokenLifetime', 'clockOffset', 'rotateRefreshTokens', 'https', 'cert', 'key']
const FAULTS = ['delay', 'hang', 'close', 'stall-body', 'reset', 'status', 'rate-limit', 'redirect', 'body', 'huge']
const API_FAULTS = ['delay', 'hang', 'close', 'status', 'rate-limit']
// `await using` looks the method up by the standard symbol, or where a realm lacks it by
// Node's (`nodejs.asyncDispose`) or esbuild's and Babel's (`Symbol.asyncDispose`).
const DISPOSE_KEYS = [...new Set([Symbol.asyncDispose, Symbol.for('nodejs.asyncDispose'), Symbol.for('Symbol.asyncDispose')])].filter((k) => typeof k === 'symbol')

function fail(message) {
  const error = new TypeError(message)
  Object.defineProperty(error, 'code', { value: 'ERR_INVALID_ARG_VALUE', enumerable: true })
  return error
}

/** A token lifetime: whole seconds, at least 2 (Sonetel's expires_in is the lifetime less one). */
const seconds = (v) => Number.isInteger(v) && v >= 2
/** A status that is a final answer (a 1xx would leave the client waiting). */
const httpStatus = (v) => Number.isInteger(v) && v >= 200 && v <= 599

const FAULT_OPTIONS = ['times', 'ms', 'until', 'status', 'body', 'contentType', 'retryAfter', 'location', 'bytes']

/** A fault's options, checked now (a bad one must not throw later inside the server); a copy of them. */
function checkFault(opts) {
  if (opts === null || typeof opts !== 'object') throw fail('fault(mode, options): options must be an object')
  const copy = {}
  for (const name of Object.keys(opts)) {
    if (!FAULT_OPTIONS.includes(name)) throw fail(`fault(mode, options): ${name} is not an option (known: ${FAULT_OPTIONS.join(', ')})`)
    copy[name] = opts[name]
  }
  const { times, ms, status, body, contentType, retryAfter, location, bytes } = copy
  if (times !== undefined && !(Number.isInteger(times) && times > 0)) throw fail('fault(mode, options): times must be a positive whole number')
  if (ms !== undefined && typeof ms !== 'function' && !(Number.isFinite(ms) && ms >= 0)) throw fail('fault(mode, options): ms must be a number of milliseconds or a function that returns one')
  if (copy.until !== undefined && typeof copy.until?.then !== 'function') throw fail('fault(mode, options): until must be a promise')
  if (status !== undefined && !httpStatus(status)) throw fail('fault(mode, options): status must be an HTTP status, 200 to 599')
  if (body !== undefined && typeof body !== 'string') throw fail('fault(mode, options): body must be a string')
  if (bytes !== undefined && !(Number.isInteger(bytes) && bytes >= 0)) throw fail('fault(mode, options): bytes must be a whole number')
  for (const [name, v] of [['contentType', contentType], ['retryAfter', retryAfter], ['location', location]]) {
    if (v === undefined) continue
    try {
      if (typeof v !== 'string' && !Number.isFinite(v)) throw new Error('not text')
      http.validateHeaderValue(name, String(v))
    } catch {
      throw fail(`fault(mode, options): ${name} must be a valid header value`)
    }
  }
  return copy
}

function check(options) {
  if (options === null || typeof options !== 'object') throw fail('startSonetel(options): options must be an object')
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) throw fail(`startSonetel(options): ${name} is not an option (known: ${OPTIONS.join(', ')})`)
  }
  if ((options.cert === undefined) !== (options.key === undefined)) throw fail('startSonetel(options): cert and key go together')
  if (options.cert !== undefined && !options.https) throw fail('startSonetel(options): cert and key need https: true')
  for (const name of ['username', 'password']) {
    if (options[name] !== undefined && (typeof options[name] !== 'string' || options[name] === '')) {
      throw fail(`startSonetel(options): ${name} must be a non-empty string`)
    }
  }
  for (const name of ['accessTokenLifetime', 'refreshTokenLifetime']) {
    const v = options[name]
    if (v !== undefined && !seconds(v)) throw fail(`startSonetel(options): ${name} must be a whole number of seconds, 2 or more`)
  }
  if (options.clockOffset !== undefined && !Number.isInteger(options.clockOffset)) {
    throw fail('startSonetel(options): clockOffset must be a whole number of seconds')
  }
  for (const name of ['https', 'rotateRefreshTokens']) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') throw fail(`startSonetel(options): ${name} must be a boolean`)
  }
  if (options.users !== undefined && options.username !== undefined && Object.hasOwn(Object(options.users), options.username) &&
    options.users[options.username] !== (options.password ?? DEFAULT_PASSWORD)) {
    throw fail('startSonetel(options): users gives username another password than password')
  }
  if (options.users !== undefined) {
    if (options.users === null || typeof options.users !== 'object' || Array.isArray(options.users)) throw fail('startSonetel(options): users must be an object of e-mail: password')
    for (const [email, pw] of Object.entries(options.users)) {
      if (typeof pw !== 'string') throw fail(`startSonetel(options): users[${JSON.stringify(email)}] must be a password string`)
    }
  }
}

/** The generated certificates, or an error that says what https needs. */
function certificates() {
  try {
    return testCertificates()
  } catch (e) {
    throw new Error(`startSonetel({ https: true }) needs the openssl command to make its certificates (${e.code ?? e.message})`, { cause: e })
  }
}

/**
 * Starts the token endpoint and the REST API on 127.0.0.1, each on a free port.
 * See index.d.ts for the options and what it resolves with.
 */
async function startSonetel(options = {}) {
  check(options)
  const username = options.username ?? DEFAULT_USERNAME
  const password = options.password ?? DEFAULT_PASSWORD
  const users = { [username]: password, ...options.users }
  const generated = options.https && !options.cert ? certificates() : undefined
  const tokens = await startSonetelServer({
    users,
    accessTokenLifetime: options.accessTokenLifetime,
    refreshTokenLifetime: options.refreshTokenLifetime,
    clockOffset: options.clockOffset,
    https: Boolean(options.https),
    cert: options.cert,
    key: options.key,
  })
  let api
  try {
    const tls = options.https ? { cert: options.cert ?? generated.cert, key: options.key ?? generated.key } : undefined
    api = await startSonetelApi({ tokens, tls, testHooks: options[TEST_HOOKS] === true })
  } catch (e) {
    await tokens.close()
    throw e
  }
  let closing

  const standIn = {
    tokenUrl: tokens.url,
    apiUrl: api.origin,
    username,
    password,
    users: tokens.users,
    ca: generated?.ca,
    requests: tokens.requests,
    apiRequests: api.requests,
    counts: tokens.counts,
    get accessTokenLifetime() { return tokens.accessTokenLifetime },
    set accessTokenLifetime(s) {
      if (!seconds(s)) throw fail('accessTokenLifetime must be a whole number of seconds, 2 or more')
      tokens.accessTokenLifetime = s
    },
    get refreshTokenLifetime() { return tokens.refreshTokenLifetime },
    set refreshTokenLifetime(s) {
      if (!seconds(s)) throw fail('refreshTokenLifetime must be a whole number of seconds, 2 or more')
      tokens.refreshTokenLifetime = s
    },
    get rotateRefreshTokens() { return tokens.rotateRefreshTokens },
    set rotateRefreshTokens(on) {
      if (typeof on !== 'boolean') throw fail('rotateRefreshTokens must be a boolean')
      tokens.rotateRefreshTokens = on
    },
    get refuseApiTokens() { return tokens.refuseApiTokens },
    set refuseApiTokens(on) {
      if (typeof on !== 'boolean') throw fail('refuseApiTokens must be a boolean')
      tokens.refuseApiTokens = on
    },
    get clockOffset() { return tokens.clockOffset },
    set clockOffset(s) {
      if (!Number.isInteger(s)) throw fail('clockOffset must be a whole number of seconds')
      tokens.clockOffset = s
    },
    sent: (grantType) => tokens.sent(grantType),
    fault(mode, opts = {}) {
      if (!FAULTS.includes(mode)) throw fail(`fault(mode): ${mode} is not a fault (known: ${FAULTS.join(', ')})`)
      tokens.fault(mode, checkFault(opts))
      return standIn
    },
    clearFaults: () => tokens.clearFaults(),
    apiFault(mode, opts = {}) {
      if (!API_FAULTS.includes(mode)) throw fail(`apiFault(mode): ${mode} is not an API fault (known: ${API_FAULTS.join(', ')})`)
      const checked = checkFault(opts)
      for (const name of ['location', 'bytes']) {
        if (checked[name] !== undefined) throw fail(`apiFault(mode, options): ${name} is for the token endpoint's faults only`)
      }
      api.fault(mode, checked)
      return standIn
    },
    clearApiFaults: () => api.clearFaults(),
    failApi(code, detail = '', status = 200) {
      if (typeof code !== 'string' || typeof detail !== 'string') throw fail('failApi(code, detail, status): code and detail must be strings')
      if (!httpStatus(status)) throw fail('failApi(code, detail, status): status must be an HTTP status, 200 to 599')
      api.failWith(code, detail, status)
      return standIn
    },
    revokeAccessTokens: () => tokens.revokeAccessTokens(),
    revokeRefreshTokens: () => tokens.revokeRefreshTokens(),
    dropConnections() {
      tokens.dropConnections()
      api.dropConnections()
    },
    reset() {
      tokens.reset()
      api.reset()
    },
    close() {
      closing ??= Promise.all([tokens.close(), api.close()]).then(() => undefined)
      return closing
    },
  }
  for (const key of DISPOSE_KEYS) {
    Object.defineProperty(standIn, key, { value: () => standIn.close(), writable: true, configurable: true, enumerable: false })
  }
  return standIn
}

module.exports = { startSonetel }
