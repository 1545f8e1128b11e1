'use strict'
// TokenManager: a JavaScript class over the native manager. The state machine (expiry
// that survives a skewed clock, the refresh margin, single flight, retries, cool-down,
// stale-while-refresh, the store) is native. The current token is also kept here, with
// the deadline the native side computed, so that a cached call never crosses into Rust;
// every new token the native side gets replaces it, and `invalidate` clears it.

const { debuglog } = require('node:util')
const { performance } = require('node:perf_hooks')
const { engine, call, cancel, listen, forget, newId, internalText, ABORTED } = require('./native.js')
const { SonetelAuthError, fromText, abortError, argTypeError, argValueError, bare, data } = require('./errors.js')
const options = require('./options.js')
const signals = require('./signals.js')
const { prepare, respond, MAX_REQUEST_BODY } = require('./fetch.js')
const { decodeAccessToken } = require('./token.js')

const { parse, stringify } = JSON
const { freeze } = Object
const NativePromise = Promise
const promiseThen = Promise.prototype.then
const rejected = Promise.reject.bind(Promise)
// Taken at load: a test framework's fake timers replace the global `performance` and
// `Date`, and a token must not outlive its real deadline because a test froze the clock.
// The monotonic clock stops while the machine sleeps (or a VM or serverless sandbox is
// frozen) and the wall clock does not: a token is handed out while both say it may be.
const monotonic = performance.now.bind(performance)
const wallClock = Date.now
const debug = debuglog('sonetel-auth')

const MANAGER_OPTIONS = [
  'username', 'password', 'tokenUrl', 'timeoutMs', 'refresh', 'ca', 'proxy', 'refreshMarginMs', 'retries',
  'retryDelayMs', 'authFailureCooldownMs', 'callTimeoutMs', 'autoRefresh', 'token', 'onToken', 'onEvent', 'apiUrl', 'store',
  'storeKey', 'storeSecret', 'storeTimeoutMs', 'storeLeaseMs',
]
const MIN_LEASE_MS = 1000
const MAX_LEASE_MS = 600_000
const CALL_OPTIONS = ['signal', 'timeoutMs']
const API_OPTIONS = ['method', 'query', 'json', 'signal', 'timeoutMs']
// What the native side fills in an API path, from the token's claims.
const PLACEHOLDERS = ['acc_id', 'user_id']
const API_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const DEFAULT_API_URL = 'https://public-api.sonetel.com'
const CLOSED = 'e{"code":"ERR_SONETEL_CLOSED","message":"the token manager is closed"}'

// `await using`: Node.js 24 has the standard symbol; Node.js 20 and 22 (in their main
// realm) and Bun use `Symbol.for('nodejs.asyncDispose')`; code compiled by esbuild
// (Vitest, tsx) or Babel looks for `Symbol.for('Symbol.asyncDispose')` where a realm
// (Jest's, Vitest's vm pools) has no symbol. The method stands under each.
const DISPOSE_KEYS = [...new Set([Symbol.asyncDispose, Symbol.for('nodejs.asyncDispose'), Symbol.for('Symbol.asyncDispose')])]
  .filter((key) => typeof key === 'symbol')

// A manager nobody holds any more stops listening for its events.
const listeners = new FinalizationRegistry(forget)

/**
 * A token as the face knows it: handed out without asking until `fresh` (by `monotonic()`)
 * and `wall` (by the wall clock), whichever comes first; `whole` (every field) when it
 * crossed, `managed` once `getToken` made it.
 */
class Known {
  /**
   * @param {number} id
   * @param {string} access
   * @param {number} fresh
   * @param {number} wall
   * @param {number | null} expiresAt
   * @param {Record<string, unknown> | undefined} whole
   */
  constructor(id, access, fresh, wall, expiresAt, whole) {
    this.id = id
    this.access = access
    this.header = `Bearer ${access}`
    this.fresh = fresh
    this.wall = wall
    this.expiresAt = expiresAt
    this.whole = whole
    /** @type {import('../../index').ManagedToken | undefined} */
    this.managed = undefined
  }
}
// Async functions resolve with these: an Object.prototype.then must not make them thenables.
Object.setPrototypeOf(Known.prototype, null)

/** What the face knows of a manager's tokens; shared with its event listener. */
class TokenState {
  constructor(onToken, onEvent, password) {
    /** The newest token the native side described (see `adopt`). @type {Known | undefined} */
    this.latest = undefined
    /** Tokens with this id or a lower one are not handed out (invalidated). */
    this.floor = 0
    this.onToken = onToken
    this.onEvent = onEvent
    this.password = password
    this.closed = false
  }

  /**
   * Takes a token descriptor `{ id, a, f, x, j? }`; returns what is known of that token.
   * @returns {Known}
   */
  adopt(d) {
    const latest = this.latest
    // Only own fields: what Object.prototype carries is not the native side's.
    const whole = Object.hasOwn(d, 'j') ? d.j : undefined
    if (latest !== undefined && d.id <= latest.id) {
      if (d.id === latest.id && latest.whole === undefined) latest.whole = whole
      if (d.id === latest.id) return latest
      return new Known(d.id, d.a, 0, 0, d.x, whole)
    }
    // The native side's "handed out without asking" window, on both clocks.
    const now = monotonic()
    const known = d.f === null
      ? new Known(d.id, d.a, Infinity, Infinity, d.x, whole)
      : new Known(d.id, d.a, now + d.f, wallClock() + d.f, d.x, whole)
    if (!this.closed) this.latest = known
    return known
  }

  /** The token to hand out without asking, if there is one. */
  fresh() {
    const latest = this.latest
    if (latest !== undefined && latest.id > this.floor && monotonic() < latest.fresh && wallClock() < latest.wall) return latest
    return undefined
  }

  /** An event from the native side (JSON text). */
  receive(text) {
    if (this.closed) return
    const event = parse(text)
    if (event.type === 'invalidated') {
      if (event.id > this.floor) this.floor = event.id
      return
    }
    let token
    if (Object.hasOwn(event, 'd')) {
      token = Object.hasOwn(event.d, 'j') ? event.d.j : undefined
      this.adopt(event.d)
      delete event.d
    }
    this.report(event)
    if (event.type === 'token' && this.onToken !== undefined) this.callOnToken(token)
  }

  /** Hands `event` to `onEvent` and to `NODE_DEBUG=sonetel-auth`; nothing it does escapes. */
  report(event) {
    if (debug.enabled) debug('%s', stringify(event))
    const onEvent = this.onEvent
    if (onEvent === undefined) return
    let result
    try {
      result = onEvent(event)
    } catch (e) {
      if (debug.enabled) debug('onEvent threw: %s', this.messageOf(e))
      return
    }
    this.watch(result, (why) => { if (debug.enabled) debug('onEvent failed: %s', why) })
  }

  callOnToken(token) {
    const failed = (message) => this.report({ type: 'onToken-failed', message })
    let result
    try {
      result = this.onToken(token)
    } catch (e) {
      failed(this.messageOf(e, token))
      return
    }
    this.watch(result, failed, token)
  }

  /** When `result` is a thenable, reports its rejection through `failed`. */
  watch(result, failed, token) {
    if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return
    const onRejected = (e) => { failed(this.messageOf(e, token)) }
    // A real promise gets the intrinsic `then`: its own `then` or `catch` may be anything.
    if (result instanceof NativePromise) {
      try {
        promiseThen.call(result, undefined, onRejected)
      } catch {
        // Its `constructor` (or species) threw. Shadowed by the intrinsic Promise for the
        // moment of `then`, so that the rejection is still handled.
        try {
          Object.defineProperty(result, 'constructor', data(NativePromise, false))
          promiseThen.call(result, undefined, onRejected)
          Reflect.deleteProperty(result, 'constructor')
        } catch {
          failed('the returned promise could not be watched')
        }
      }
      return
    }
    let then
    try {
      then = result.then
    } catch {
      failed('the returned value\'s then could not be read')
      return
    }
    if (typeof then !== 'function') return
    try {
      then.call(result, undefined, onRejected)
    } catch {
      failed('the returned thenable\'s then threw')
    }
  }

  /** The message of what a callback threw, without any secret of ours in it. */
  messageOf(thrown, token) {
    let message
    try {
      message = typeof thrown === 'object' && thrown !== null ? String(thrown.message) : String(thrown)
    } catch {
      message = 'a value that is not an Error'
    }
    for (const secret of [this.password, token?.access_token, token?.refresh_token, this.latest?.access]) {
      if (typeof secret === 'string' && secret.length >= 4) message = message.split(secret).join('[redacted]')
    }
    return message.slice(0, 500)
  }
}

/**
 * The frozen object `getToken()` resolves with, one per token.
 * @param {Known} known
 * @returns {import('../../index').ManagedToken}
 */
function managedToken(known) {
  let claims = null
  try {
    claims = freeze(decodeAccessToken(known.access))
  } catch {
    // Not a JWT.
  }
  return /** @type {import('../../index').ManagedToken} */ (freeze({ ...known.whole, expiresAt: known.expiresAt, claims }))
}

function closedError() {
  return fromText(CLOSED)
}

class TokenManager {
  #native
  #state
  #id
  #apiUrl
  /** The settle functions of calls under way, for close(). */
  #calls = new Map()
  /** @type {Promise<void> | undefined} */
  #closing = undefined
  /** Kept out of error messages. */
  #user
  /** The store's kind (`redis`, `rediss`, `file`), for inspect: its URL may hold a password. */
  #store

  constructor(opts) {
    const fields = options.readOptions(opts, 'options', MANAGER_OPTIONS)
    if (fields === undefined) {
      throw argTypeError(`options must be an object with username and password, received ${options.typeName(opts)}`)
    }
    const username = options.text(fields.username, 'options.username')
    if (fields.password === undefined) {
      throw argTypeError('options.password must be a string or a Buffer, received undefined')
    }
    const password = options.secretBytes(fields.password, 'options.password')
    const config = {
      ...options.requestConfig(fields, 'options'),
      refreshMarginMs: options.millis(fields, 'refreshMarginMs', 'options', false),
      retries: retries(fields.retries),
      retryDelayMs: options.millis(fields, 'retryDelayMs', 'options', false),
      authFailureCooldownMs: options.millis(fields, 'authFailureCooldownMs', 'options', false),
      callTimeoutMs: options.millis(fields, 'callTimeoutMs', 'options', true),
      autoRefresh: options.boolean(fields, 'autoRefresh', 'options'),
      apiUrl: options.string(fields, 'apiUrl', 'options'),
      store: options.string(fields, 'store', 'options'),
      storeKey: options.string(fields, 'storeKey', 'options'),
      storeTimeoutMs: options.millis(fields, 'storeTimeoutMs', 'options', true),
      storeLeaseMs: options.millis(fields, 'storeLeaseMs', 'options', true),
      events: fields.onEvent !== undefined || debug.enabled,
    }
    if (config.store === undefined) {
      for (const name of ['storeKey', 'storeSecret', 'storeTimeoutMs', 'storeLeaseMs']) {
        if (fields[name] !== undefined) throw argValueError(`options.${name} needs options.store`)
      }
    }
    // Renewed every third of it, two round trips each: shorter fails on a slow network;
    // longer makes a dead holder cost more than anyone would wait.
    if (config.storeLeaseMs !== undefined && !(config.storeLeaseMs >= MIN_LEASE_MS && config.storeLeaseMs <= MAX_LEASE_MS)) {
      throw argValueError(`options.storeLeaseMs must be from ${MIN_LEASE_MS} to ${MAX_LEASE_MS} ms`)
    }
    const storeSecret = fields.storeSecret === undefined ? undefined : secret(fields.storeSecret)
    const onToken = callback(fields, 'onToken')
    const onEvent = callback(fields, 'onEvent')
    const token = stored(fields.token)
    const { binding, channel } = engine()
    const id = newId()
    let native
    try {
      native = new binding.NativeManager(channel, id, options.encode(config), username, password, storeSecret, token)
    } catch (e) {
      const message = e?.message
      throw fromText(typeof message === 'string' && message.charCodeAt(0) === 101 ? message : internalText(String(message)))
    }
    const state = new TokenState(onToken, onEvent, typeof password === 'string' ? password : undefined)
    listen(id, (text) => state.receive(text))
    listeners.register(this, id, this)
    this.#native = native
    this.#state = state
    this.#id = id
    this.#apiUrl = config.apiUrl ?? DEFAULT_API_URL
    this.#user = username
    this.#store = config.store === undefined ? null : config.store.slice(0, Math.max(0, config.store.indexOf(':')))
    const current = native.current()
    if (current != null) state.adopt(parse(current.slice(1)))
  }

  /** Throws for a method taken off a manager and called on something else. */
  static #check(that, method) {
    if (typeof that !== 'object' || that === null || !(#state in that)) {
      throw argTypeError(`TokenManager.prototype.${method} must be called on a TokenManager`)
    }
  }

  /** A call's options (`signal`, `timeoutMs`); an aborted signal ends the call before anything. */
  static #call(opts) {
    const fields = opts === undefined ? NO_CALL : options.readOptions(opts, 'options', CALL_OPTIONS) ?? NO_CALL
    const signal = fields === NO_CALL ? undefined : options.signal(fields, 'options')
    const timeoutMs = options.millis(fields, 'timeoutMs', 'options', true)
    if (signal !== undefined && signals.aborted(signal)) throw abortError(signals.reason(signal))
    return { signal, timeoutMs }
  }

  /** @param {import('../../index').CallOptions | undefined} opts */
  async getAccessToken(opts) {
    TokenManager.#check(this, 'getAccessToken')
    const call = TokenManager.#call(opts)
    const known = this.#state.fresh() ?? await this.#token(call, false)
    return known.access
  }

  /** @param {import('../../index').CallOptions | undefined} opts */
  async authorizationHeader(opts) {
    TokenManager.#check(this, 'authorizationHeader')
    const call = TokenManager.#call(opts)
    const known = this.#state.fresh() ?? await this.#token(call, false)
    return known.header
  }

  /** @param {import('../../index').CallOptions | undefined} opts */
  async getToken(opts) {
    TokenManager.#check(this, 'getToken')
    const call = TokenManager.#call(opts)
    let known = this.#state.fresh()
    if (known === undefined || known.whole === undefined) known = await this.#token(call, true)
    return (known.managed ??= managedToken(known))
  }

  /** A token from the native side: the cached one, or the fetch's. */
  async #token({ signal, timeoutMs }, whole) {
    if (this.#closing !== undefined) throw closedError()
    const state = this.#state
    const known = state.latest === undefined ? -1 : state.latest.id
    const native = this.#native
    const text = await call((id) => native.token(id, known, whole, timeoutMs), signals.watcher(signal, 'options'), this.#calls)
    if (text === ABORTED) throw abortError(signals.reason(signal))
    if (text.charCodeAt(0) !== 118) throw fromText(text, undefined, this.#user)
    return state.adopt(parse(text.slice(1)))
  }

  /** @param {string} [staleAccessToken] */
  invalidate(staleAccessToken) {
    TokenManager.#check(this, 'invalidate')
    const stale = staleAccessToken === undefined || staleAccessToken === null
      ? undefined
      : options.text(staleAccessToken, 'staleAccessToken', options.MAX_TOKEN)
    const state = this.#state
    const latest = state.latest
    if (latest !== undefined && (stale === undefined || stale === latest.access) && latest.id > state.floor) {
      state.floor = latest.id
    }
    return this.#closing === undefined && this.#native.invalidate(stale)
  }

  /**
   * @param {string | URL | Request} input
   * @param {RequestInit & { timeoutMs?: number }} [init]
   */
  async fetch(input, init) {
    TokenManager.#check(this, 'fetch')
    if (this.#closing !== undefined) throw closedError()
    const prepared = await prepare(input, init, this.#apiUrl)
    if (prepared.error !== undefined) {
      throw (prepared.type ? argTypeError : argValueError)(`manager.fetch() ${prepared.error}`)
    }
    const { signal } = prepared
    // As the global fetch: an abort rejects with the signal's reason.
    if (prepared.aborted) throw signals.reason(signal)
    const timeoutMs = options.millis(bare({ timeoutMs: prepared.timeoutMs }), 'timeoutMs', 'init', true)
    const request = { method: prepared.method, path: shownPath(new URL(prepared.url)) }
    const native = this.#native
    const { channel } = engine()
    const outcome = await call(
      (id) => native.send(id, false, prepared.method, prepared.url, prepared.headers, prepared.body ?? undefined,
        prepared.replayable, prepared.redirect === 'follow', timeoutMs),
      signals.watcher(signal ?? undefined, 'init'),
      this.#calls,
      (text, id) => (text.charCodeAt(0) === 118 ? bare({ text, body: channel.takeBody(id) }) : text),
    )
    if (outcome === ABORTED) throw signals.reason(signal)
    if (typeof outcome === 'string') throw fromText(outcome, undefined, this.#user, request)
    const meta = parse(outcome.text.slice(1))
    if (prepared.redirect === 'error' && [301, 302, 303, 307, 308].includes(meta.status)) {
      throw new SonetelAuthError(`Sonetel answered HTTP ${meta.status}`, 'ERR_SONETEL_HTTP', { status: meta.status, body: '' })
    }
    if (!(meta.status >= 200 && meta.status <= 599)) {
      throw new SonetelAuthError(`Sonetel answered HTTP ${meta.status} with a status outside 200 to 599, which a fetch Response cannot carry`,
        'ERR_SONETEL_RESPONSE', { status: meta.status })
    }
    return respond(meta, outcome.body)
  }

  /**
   * @param {string} path
   * @param {import('../../index').ApiOptions} [opts]
   */
  async api(path, opts) {
    TokenManager.#check(this, 'api')
    if (typeof path !== 'string') throw argTypeError(`path must be a string, received ${options.typeName(path)}`)
    if (path.length > 8192) throw argValueError('path is longer than 8192 characters')
    const fields = options.readOptions(opts, 'options', API_OPTIONS) ?? options.NO_FIELDS
    let url
    try {
      url = new URL(path, this.#apiUrl)
    } catch {
      throw argValueError('path is not a valid URL or path')
    }
    const headers = ['accept', 'application/json']
    let method = 'GET'
    let body
    if (fields.json !== undefined) {
      let json
      try {
        json = stringify(fields.json)
      } catch {
        json = undefined
      }
      if (typeof json !== 'string') throw argValueError('options.json could not be turned into JSON')
      if (json.length > MAX_REQUEST_BODY) throw argValueError(`options.json is larger than ${MAX_REQUEST_BODY} bytes`)
      body = Buffer.from(json)
      headers.push('content-type', 'application/json')
      method = 'POST'
    }
    const m = options.string(fields, 'method', 'options')
    if (m !== undefined) {
      method = m.toUpperCase()
      if (!API_METHODS.includes(method)) throw argValueError(`options.method must be one of ${API_METHODS.join(', ')}`)
    }
    if (fields.query !== undefined) addQuery(url, fields.query)
    const signal = options.signal(fields, 'options')
    const timeoutMs = options.millis(fields, 'timeoutMs', 'options', true)
    const request = { method, path: shownPath(url) }
    if (this.#closing !== undefined) throw closedError()
    const native = this.#native
    const text = await call(
      (id) => native.send(id, true, method, url.href, headers, body, true, true, timeoutMs),
      signals.watcher(signal, 'options'),
      this.#calls,
    )
    if (text === ABORTED) throw abortError(signals.reason(signal))
    if (text.charCodeAt(0) !== 118) throw fromText(text, undefined, this.#user, request)
    return parse(text.slice(1))
  }

  /**
   * Stops the manager for good: its timer, its store connection and the calls under way
   * (which reject with `ERR_SONETEL_CLOSED`, as every later call does). Resolves once the
   * native side has let go of them.
   */
  close() {
    try {
      TokenManager.#check(this, 'close')
    } catch (e) {
      return rejected(e)
    }
    if (this.#closing !== undefined) return this.#closing
    // From now on nothing the native side says reaches this manager: no token is cached
    // again, no event or onToken is called.
    this.#state.closed = true
    this.#state.latest = undefined
    forget(this.#id)
    listeners.unregister(this)
    for (const [id, settle] of [...this.#calls]) {
      cancel(id)
      settle(CLOSED)
    }
    const native = this.#native
    this.#closing = call((id) => native.close(id)).then(() => undefined)
    return this.#closing
  }

  // `close()`, for `await using`; it stands under other keys too (DISPOSE_KEYS). In a
  // realm without the standard symbol this key is the string 'undefined', removed below.
  [Symbol.asyncDispose]() {
    return this.close()
  }

  /** What `JSON.stringify(manager)` shows: no secret, only whether a token is cached. */
  toJSON() {
    TokenManager.#check(this, 'toJSON')
    const latest = this.#state.latest
    return { cached: latest !== undefined && latest.id > this.#state.floor }
  }

  /** What `util.inspect(manager)` and `console.log(manager)` show: its state, no secret. */
  [Symbol.for('nodejs.util.inspect.custom')](depth, opts, inspect) {
    if (typeof this !== 'object' || this === null || !(#state in this)) return 'TokenManager {}'
    const state = this.#state
    const latest = state.latest
    const cached = latest !== undefined && latest.id > state.floor && !state.closed
    const shown = {
      token: cached ? (this.#state.fresh() !== undefined ? 'fresh' : 'refresh due') : 'none',
      expiresAt: cached && typeof latest.expiresAt === 'number' ? new Date(latest.expiresAt).toISOString() : null,
      apiUrl: this.#apiUrl,
      store: this.#store,
      closed: this.#closing !== undefined,
    }
    const body = typeof inspect === 'function' ? inspect(shown, opts) : stringify(shown)
    return `TokenManager ${body}`
  }

  /**
   * A manager configured from the environment, with the variable names of the
   * `sonetel-auth` command: `SONETEL_USERNAME`, `SONETEL_PASSWORD`, `SONETEL_TOKEN_URL`,
   * and `SONETEL_API_URL`, `SONETEL_STORE`, `SONETEL_STORE_SECRET`. `opts` wins over the
   * environment; `env` (default `process.env`) is read as own properties only.
   * @param {Partial<import('../../index').TokenManagerOptions>} [opts]
   * @param {Record<string, string | undefined>} [env]
   */
  static fromEnv(opts, env) {
    const given = options.readOptions(opts, 'options', MANAGER_OPTIONS) ?? options.NO_FIELDS
    const source = env === undefined ? process.env : env
    if (typeof source !== 'object' || source === null) {
      throw argTypeError(`env must be an object, received ${options.typeName(source)}`)
    }
    const merged = Object.create(null)
    for (const [option, name] of ENVIRONMENT) {
      if (given[option] !== undefined) continue
      const value = ownText(source, name)
      if (value !== undefined) merged[option] = value
      else if (option === 'username' || option === 'password') {
        throw argValueError(`TokenManager.fromEnv(): ${name} is not set (nor options.${option})`)
      }
    }
    return new TokenManager({ ...merged, ...given })
  }
}

// (Without the symbol, `prototype[Symbol.asyncDispose]` reads the key 'undefined'.)
const dispose = TokenManager.prototype[Symbol.asyncDispose]
if (typeof Symbol.asyncDispose !== 'symbol') Reflect.deleteProperty(TokenManager.prototype, 'undefined')
for (const key of DISPOSE_KEYS) Object.defineProperty(TokenManager.prototype, key, data(dispose, false))

/** The environment variables `TokenManager.fromEnv()` reads, by option. */
const ENVIRONMENT = [
  ['username', 'SONETEL_USERNAME'], ['password', 'SONETEL_PASSWORD'], ['tokenUrl', 'SONETEL_TOKEN_URL'],
  ['apiUrl', 'SONETEL_API_URL'], ['store', 'SONETEL_STORE'], ['storeSecret', 'SONETEL_STORE_SECRET'],
]

/** `env[name]` when it is its own, non-empty string. */
function ownText(env, name) {
  let d
  try {
    d = Object.getOwnPropertyDescriptor(env, name)
  } catch {
    return undefined
  }
  const value = d?.value
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** A call without options. */
const NO_CALL = options.NO_FIELDS

function retries(value) {
  if (value === undefined) return undefined
  if (typeof value !== 'number') throw argTypeError(`options.retries must be a number, received ${options.typeName(value)}`)
  if (!Number.isInteger(value) || value < 0 || value > 10) {
    throw argValueError('options.retries must be a whole number from 0 to 10')
  }
  return value
}

function secret(value) {
  return options.secretBytes(value, 'options.storeSecret', 4096)
}

function callback(fields, name) {
  const f = fields[name]
  if (f === undefined) return undefined
  if (typeof f !== 'function') throw argTypeError(`options.${name} must be a function, received ${options.typeName(f)}`)
  return f
}

/** A token the app stored, as JSON text: cycles, getters and depth end in a refusal. */
function stored(token) {
  if (token === undefined || token === null) return undefined
  if (typeof token !== 'object' || Array.isArray(token)) {
    throw argTypeError(`options.token must be an AccessToken object, received ${options.typeName(token)}`)
  }
  let json
  try {
    json = stringify(token)
  } catch {
    json = undefined
  }
  if (typeof json !== 'string' || json.length > 1024 * 1024) {
    throw argValueError('options.token could not be read as JSON (a cycle, a getter that throws, or too large)')
  }
  return json
}

/**
 * A request's path as errors show it: without its query, its placeholders as written.
 * A placeholder the native side does not fill is refused before anything is sent: it
 * would go to Sonetel as `%7BaccId%7D`.
 * @param {URL} url
 */
function shownPath(url) {
  const path = url.pathname.replace(/%7B/gi, '{').replace(/%7D/gi, '}')
  for (const [, name] of path.matchAll(/\{([^{}/]*)\}/g)) {
    if (!PLACEHOLDERS.includes(name)) {
      throw argValueError(`path has the placeholder {${name.slice(0, 64)}}, which is not one this package fills (${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`)
    }
  }
  return path
}

/** `query`: strings, numbers and booleans (or arrays of them), added to the URL's query. */
function addQuery(url, query) {
  const fields = options.readOptions(query, 'options.query')
  if (fields === undefined) return
  for (const name of Object.keys(fields)) {
    const value = fields[name]
    const items = Array.isArray(value) ? value : [value]
    if (items.length > 1000) throw argValueError(`options.query.${name} has more than 1000 items`)
    for (const item of items) {
      if (typeof item === 'number' && !Number.isFinite(item)) throw argValueError(`options.query.${name} must be a finite number`)
      if (typeof item !== 'string' && typeof item !== 'boolean' && typeof item !== 'number') {
        throw argTypeError(`options.query.${name} must be a string, a finite number or a boolean (or an array of them), received ${options.typeName(item)}`)
      }
      url.searchParams.append(name, String(item))
    }
  }
}

module.exports = { TokenManager }
