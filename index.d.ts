// The public types of sonetel-auth, written by hand: the JavaScript face in src/face/
// implements them (checked by tsc in __test__/types.test.mjs).

declare global {
  // For `await using manager = new TokenManager(…)`; lib.esnext.disposable and @types/node
  // declare the same.
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol
  }
}

/**
 * What the token endpoint answered: every field exactly as the server sent it. These are
 * the fields Sonetel sends; any other field is there too, as `unknown`.
 *
 * @example
 * ```ts
 * const token: AccessToken = await createAccessToken('me@example.com', password)
 * const accountId: unknown = token['acc_id']
 * await fetch(url, { headers: { Authorization: `Bearer ${token.access_token}` } })
 * ```
 */
export interface AccessToken {
  /** The bearer token to send as `Authorization: Bearer <access_token>`. A JWT. */
  access_token: string
  /** `"bearer"`. */
  token_type: string
  /** Present when a refresh token was asked for (`refresh: true`, the default). */
  refresh_token?: string | undefined
  /** Seconds the access token lives (about 86400). */
  expires_in?: number | undefined
  /** The granted scope. */
  scope?: string | undefined
  /** The token's unique id. */
  jti?: string | undefined
  /** Every other field the server sent. */
  [field: string]: unknown
}

/**
 * What `TokenManager.getToken()` resolves with: the token as the server sent it, and the
 * manager's view of it.
 *
 * @example
 * ```ts
 * const { access_token, claims, expiresAt } = await manager.getToken()
 * console.log(access_token.length, claims?.acc_id, expiresAt)
 * ```
 */
export interface ManagedToken extends AccessToken {
  /**
   * When the manager considers the token expired, in ms since 1970, after correcting for
   * clock skew; `null` when nothing says.
   */
  expiresAt: number | null
  /** The access token's claims (`acc_id`, `user_id`, `exp`, …); `null` if it is not a JWT. */
  claims: (TokenClaims & { [claim: string]: unknown }) | null
}

/** Every `code` an error of this package can have. */
export type SonetelAuthErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_SONETEL_AUTH'
  | 'ERR_SONETEL_HTTP'
  | 'ERR_SONETEL_RESPONSE'
  | 'ERR_SONETEL_TIMEOUT'
  | 'ERR_SONETEL_NETWORK'
  | 'ERR_SONETEL_API'
  | 'ABORT_ERR'
  | 'ERR_SONETEL_INTERNAL'
  | 'ERR_SONETEL_CLOSED'

/**
 * An argument or option has the wrong type (`ERR_INVALID_ARG_TYPE`) or a value we refuse
 * (`ERR_INVALID_ARG_VALUE`). Always a `TypeError`, as Node's own argument errors are.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('', password).catch((e: unknown) => e)
 * if (isSonetelAuthError(err) && err.code === 'ERR_INVALID_ARG_VALUE') console.error(err.message)
 * ```
 */
export interface SonetelArgumentError extends TypeError {
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE'
  /** What `JSON.stringify(err)` gives: see {@link SonetelErrorJson}. */
  toJSON(): SonetelErrorJson
}

/**
 * What `JSON.stringify(err)` gives for every error of this package, as loggers (pino,
 * winston, log shippers) serialise errors: its name, code and message, the properties
 * of its kind, the request a `manager.api()`/`manager.fetch()` call made, and the
 * cause's name and code (`ECONNREFUSED`, …). Never a password, a refresh token or an
 * access token; never the stack.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (isSonetelAuthError(err)) console.log(JSON.stringify(err)) // {"name":"SonetelAuthError","code":"ERR_SONETEL_NETWORK","message":"…","cause":{"name":"Error","code":"ECONNREFUSED","syscall":"connect"}}
 * ```
 */
export interface SonetelErrorJson {
  name: string
  code: SonetelAuthErrorCode
  message: string
  status?: number
  error?: string
  error_description?: string
  retryAfterMs?: number
  body?: string
  apiCode?: string
  detail?: string
  endpoint?: 'token' | 'api'
  method?: string
  path?: string
  cause?: { name?: string; code?: string | number; syscall?: string }
}

/**
 * What every `SonetelAuthError` has: the `code` that says which kind it is.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError) console.error(err.name, err.code, err.stack)
 * ```
 */
export interface SonetelAuthErrorBase extends Error {
  readonly name: 'SonetelAuthError'
  readonly code: Exclude<SonetelAuthErrorCode, 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ABORT_ERR'>
  /**
   * For a failed `manager.api()` or `manager.fetch()` call: which side failed, getting
   * the token (`token`: the token endpoint) or the request itself (`api`).
   */
  readonly endpoint?: 'token' | 'api' | undefined
  /** For a failed `manager.api()` or `manager.fetch()` call: its HTTP method. */
  readonly method?: string | undefined
  /** For a failed `manager.api()` or `manager.fetch()` call: its path, without the query, placeholders as written. */
  readonly path?: string | undefined
  /** What `JSON.stringify(err)` gives: see {@link SonetelErrorJson}. */
  toJSON(): SonetelErrorJson
}

/**
 * Sonetel refused the grant (a 4xx with an OAuth `error`), or a `TokenManager` is in its
 * cool-down after a refused password. A `status` of 408 or 429 means "try later".
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_AUTH') console.error(err.status, err.error, err.error_description)
 * ```
 */
export interface SonetelRefusedError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_AUTH'
  /** The HTTP status: 400 `invalid_grant`, 401 `unauthorized`, 429 `too_many_requests`, … */
  readonly status: number
  /** The OAuth `error`. */
  readonly error: string
  /** The OAuth `error_description`, secrets scrubbed. */
  readonly error_description?: string | undefined
  /** From `Retry-After`, or what is left of a cool-down, in ms. */
  readonly retryAfterMs?: number | undefined
}

/**
 * Any other non-2xx answer: 5xx, HTML error pages, redirects.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_HTTP') console.error(err.status, err.body.slice(0, 80))
 * ```
 */
export interface SonetelHttpError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_HTTP'
  readonly status: number
  /** The start of the body (1 KiB at most), secrets scrubbed. */
  readonly body: string
  /** From `Retry-After`, in ms. */
  readonly retryAfterMs?: number | undefined
}

/**
 * A 2xx whose body is not a token (or, for `manager.api`, not Sonetel's envelope).
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_RESPONSE') console.error('odd answer', err.status)
 * ```
 */
export interface SonetelResponseError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_RESPONSE'
  readonly status: number
}

/**
 * Sonetel's REST API answered `{"status":"failed", …}` (`manager.api`), often with HTTP 200.
 *
 * @example
 * ```ts
 * const err = await manager.api('/account/{acc_id}').catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_API') console.error(err.status, err.apiCode, err.detail)
 * ```
 */
export interface SonetelApiError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_API'
  /** The HTTP status. */
  readonly status: number
  /** Sonetel's `code`. */
  readonly apiCode?: string | undefined
  /** Sonetel's `detail`. */
  readonly detail?: string | undefined
  /** From `Retry-After`, in ms. */
  readonly retryAfterMs?: number | undefined
}

/**
 * What failed under a network error, shaped like Node's own system errors (and undici's
 * `cause`): `code` is Node's name for it.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_NETWORK' && err.cause.code === 'ENOTFOUND') console.error('no such host', err.cause.hostname)
 * ```
 */
export interface SonetelNetworkCause extends Error {
  /**
   * `ECONNREFUSED`, `ENOTFOUND`, `EAI_AGAIN`, `ECONNRESET`, `ETIMEDOUT`, `EHOSTUNREACH`,
   * `ENETUNREACH`; for TLS `CERT_HAS_EXPIRED`, `CERT_NOT_YET_VALID`,
   * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_TLS_CERT_ALTNAME_INVALID`,
   * `CERT_SIGNATURE_FAILURE`, `CERT_REVOKED` or `EPROTO`; `UNKNOWN` otherwise.
   */
  readonly code: string
  /** `connect`, `getaddrinfo` or `read`, where known. */
  readonly syscall?: string | undefined
  readonly hostname?: string | undefined
  readonly port?: number | undefined
}

/**
 * The network failed (`ERR_SONETEL_NETWORK`: DNS, connect, TLS, reset); `cause` says how.
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_NETWORK') console.error(err.cause.code, err.cause.syscall)
 * ```
 */
export interface SonetelNetworkError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_NETWORK'
  readonly cause: SonetelNetworkCause
}

/**
 * A deadline passed (`ERR_SONETEL_TIMEOUT`: a request's `timeoutMs`, or a manager call's
 * `timeoutMs`/`callTimeoutMs`), the manager was closed
 * (`ERR_SONETEL_CLOSED`), or a bug in this package (`ERR_SONETEL_INTERNAL`).
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password).catch((e: unknown) => e)
 * if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_TIMEOUT') console.error('try again later')
 * ```
 */
export interface SonetelTransportError extends SonetelAuthErrorBase {
  readonly code: 'ERR_SONETEL_TIMEOUT' | 'ERR_SONETEL_INTERNAL' | 'ERR_SONETEL_CLOSED'
}

/**
 * The caller's `AbortSignal` fired; `cause` is the signal's reason. (`manager.fetch`
 * rejects with the reason itself, as the global `fetch` does.)
 *
 * @example
 * ```ts
 * const err = await createAccessToken('me@example.com', password, { signal: AbortSignal.abort() }).catch((e: unknown) => e)
 * if (isSonetelAuthError(err) && err.code === 'ABORT_ERR') console.log(err.name, err.cause)
 * ```
 */
export interface SonetelAbortError extends Error {
  readonly code: 'ABORT_ERR'
  readonly name: 'AbortError'
  readonly cause?: unknown
  /** What `JSON.stringify(err)` gives: see {@link SonetelErrorJson}. */
  toJSON(): SonetelErrorJson
}

/** The package's own failures, told apart by `code`: what `instanceof SonetelAuthError` narrows to. */
export type SonetelAuthError =
  | SonetelRefusedError
  | SonetelHttpError
  | SonetelResponseError
  | SonetelApiError
  | SonetelNetworkError
  | SonetelTransportError

/**
 * The class of the package's own failures (every code but the argument errors, which are
 * `TypeError`s, and `ABORT_ERR`). Its `stack` shows the caller's async frames.
 *
 * @example
 * ```ts
 * try {
 *   await createAccessToken('me@example.com', password)
 * } catch (err) {
 *   if (err instanceof SonetelAuthError && err.code === 'ERR_SONETEL_AUTH') console.error(err.status, err.error)
 *   else throw err
 * }
 * ```
 */
export declare const SonetelAuthError: {
  new (message: string, code: SonetelAuthError['code'], props?: Record<string, unknown>, cause?: unknown): SonetelAuthError
  readonly prototype: SonetelAuthError
}


/**
 * A token that manages itself for a backend that runs for months: cached while valid,
 * refreshed ahead of expiry with the refresh token (falling back to the password when
 * that is refused), one request in flight however many callers wait, transient failures
 * (network, timeouts, 408, 429, 5xx) retried with back-off, a refused password not sent
 * again for `authFailureCooldownMs`, expiry that survives a skewed clock, and an event
 * for everything it does.
 *
 * `util.inspect(manager)` and `JSON.stringify(manager)` show no secret.
 *
 * @example
 * ```ts
 * const manager = new TokenManager({ username, password, onToken: (t) => save(t) })
 * const account = await manager.api('/account/{acc_id}')
 * ```
 */
export declare class TokenManager {
  /**
   * Throws a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` or `ERR_INVALID_ARG_VALUE`
   * for bad options. Makes no request until the first call (or, with `autoRefresh`,
   * until a stored token nears its expiry).
   *
   * @example
   * ```ts
   * const manager = new TokenManager({ username: 'me@example.com', password })
   * ```
   */
  constructor(options: TokenManagerOptions)
  /**
   * A valid access token: the cached one while it has more than the refresh margin to
   * live, else a new one. Concurrent calls share one request.
   *
   * @example
   * ```ts
   * const accessToken = await manager.getAccessToken()
   * ```
   */
  getAccessToken(options?: CallOptions): Promise<string>
  /**
   * `"Bearer <access token>"`, ready for an `Authorization` header.
   *
   * @example
   * ```ts
   * await fetch(url, { headers: { Authorization: await manager.authorizationHeader() } })
   * ```
   */
  authorizationHeader(options?: CallOptions): Promise<string>
  /**
   * The whole current token: every field the server sent, plus `expiresAt` (when the
   * manager considers it expired, in ms since 1970, after correcting for clock skew;
   * `null` when nothing says) and `claims` (its decoded JWT claims, `null` for a token
   * that is not a JWT). Same caching and sharing as `getAccessToken()`.
   *
   * @example
   * ```ts
   * const { access_token, claims } = await manager.getToken()
   * const accountUrl = `https://public-api.sonetel.com/account/${String(claims?.acc_id)}`
   * console.log(accountUrl, access_token.length)
   * ```
   */
  getToken(options?: CallOptions): Promise<ManagedToken>
  /**
   * Forgets the cached access token, for when a Sonetel API answered 401. Pass the
   * token that got the 401: it is dropped only while it is still the current one, so
   * twenty requests that fail with the same stale token cause one new token request.
   * Without an argument the cached token is always dropped. The next call gets a new
   * one, with the refresh token while it is valid. Returns whether it was dropped.
   *
   * @example
   * ```ts
   * const accessToken = await manager.getAccessToken()
   * const response = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } })
   * if (response.status === 401) manager.invalidate(accessToken)
   * ```
   */
  invalidate(staleAccessToken?: string): boolean
  /**
   * `fetch` for Sonetel's REST API, with the manager's token: the same arguments and
   * result as the global `fetch` (a standard `Response`). A path is resolved against
   * `apiUrl`; a URL on any other origin (or with a user name or password) rejects with
   * `ERR_INVALID_ARG_VALUE`, and a redirect to another origin is not followed: the
   * token goes nowhere else. On a 401 it invalidates that token and retries once with a
   * new one, when the body can be sent again (not a stream). The manager's `timeoutMs`,
   * `proxy` and `ca` apply; so do `init.signal` and `init.timeoutMs` (the whole call's
   * deadline, token included; default the manager's `callTimeoutMs`). No request is sent
   * twice for a 429 or 5xx: the `Response` is yours to read. Bodies are read whole, up to
   * 16 MiB. An error names the request (`method`, `path`) and the side that failed
   * (`endpoint`).
   *
   * @example
   * ```ts
   * const res = await manager.fetch('/make-calls/call/call-back', {
   *   method: 'POST',
   *   headers: { 'content-type': 'application/json' },
   *   body: JSON.stringify({ call1: '+46701234567', call2: '+46812345678' }),
   * })
   * ```
   */
  fetch(input: string | URL | Request, init?: RequestInit & { timeoutMs?: number | undefined }): Promise<Response>
  /**
   * Calls Sonetel's JSON API and resolves with the `response` member of a
   * `{"status":"success"}` answer. `{acc_id}` and `{user_id}` in the path are filled
   * from the token's claims. A `{"status":"failed"}` answer rejects with
   * `ERR_SONETEL_API` (`status`, `apiCode`, `detail`), whatever its HTTP status; any
   * other non-2xx answer with `ERR_SONETEL_HTTP`. `json` is sent as the body (and makes
   * the method `POST` unless `method` says otherwise); `query` adds to the query string.
   * A `HEAD` request resolves with `null` on a 2xx answer. Untyped (`any`) unless you
   * give `T`, as `Response.json()` is. Any other `{placeholder}` is
   * refused (`ERR_INVALID_ARG_VALUE`) before anything is sent.
   *
   * Retries: a read (`GET`, `HEAD`) answered 429 or 503 is sent again after the
   * server's `Retry-After` (else the manager's back-off), at most `retries` times and
   * only when the wait ends within the call's deadline; any other method is never sent
   * twice. Every error names the request (`method`, `path`) and the side that failed
   * (`endpoint`), and carries `retryAfterMs` when the server said when to come back.
   *
   * @example
   * ```ts
   * const account = await manager.api<{ account_id: number }>('/account/{acc_id}')
   * const { session_id } = await manager.api<{ session_id: string }>('/make-calls/call/call-back', {
   *   json: { call1: '+46701234567', call2: '+46812345678' },
   * })
   * console.log(account.account_id, session_id)
   * ```
   */
  api<T = any>(path: string, options?: ApiOptions): Promise<T>
  /**
   * A manager configured from the environment, with the variable names of the
   * `sonetel-auth` command: `SONETEL_USERNAME`, `SONETEL_PASSWORD`, `SONETEL_TOKEN_URL`,
   * and `SONETEL_API_URL`, `SONETEL_STORE`, `SONETEL_STORE_SECRET`. An empty variable
   * counts as unset; `options` win over the environment. Throws `ERR_INVALID_ARG_VALUE`
   * naming the variable when the user name or password is in neither. `env` (default
   * `process.env`) is read as own properties only. Nothing else in the package reads
   * the environment for its options.
   *
   * @example
   * ```ts
   * const manager = TokenManager.fromEnv({ callTimeoutMs: 5_000 })
   * const stand = TokenManager.fromEnv({}, { SONETEL_USERNAME: 'me@example.com', SONETEL_PASSWORD: 'secret' })
   * ```
   */
  static fromEnv(options?: Partial<TokenManagerOptions>, env?: Record<string, string | undefined>): TokenManager
  /**
   * What `JSON.stringify(manager)` shows: no secrets, only whether a token is cached.
   *
   * @example
   * ```ts
   * JSON.stringify(manager) // '{"cached":true}'
   * ```
   */
  toJSON(): { cached: boolean }
  /**
   * Stops the manager for good: its `autoRefresh` timer, its store connection and the
   * calls under way, which reject with `ERR_SONETEL_CLOSED` (as every later call does).
   * Resolves once the native side has let go of them. Calling it again returns the same
   * promise.
   *
   * @example
   * ```ts
   * const tenant = new TokenManager({ username, password, autoRefresh: true })
   * await tenant.getAccessToken()
   * await tenant.close()
   * ```
   */
  close(): Promise<void>
  /**
   * `close()`, for `await using manager = new TokenManager(…)` (TypeScript 5.2+, with
   * `esnext.disposable` in `lib`). The method is there under the standard symbol and
   * under `Symbol.for('nodejs.asyncDispose')` and `Symbol.for('Symbol.asyncDispose')`,
   * the keys Node.js 20 and 22, esbuild and Babel use where a realm has no standard
   * symbol (Jest's, Vitest's vm pools): see the README's "Testing your code".
   *
   * @example
   * ```ts
   * const scoped = new TokenManager({ username, password })
   * try {
   *   await scoped.getAccessToken()
   * } finally {
   *   await scoped[Symbol.asyncDispose]()
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * Options of `manager.api()`.
 *
 * @example
 * ```ts
 * const options: ApiOptions = { method: 'GET', query: { page: 2 }, signal: AbortSignal.timeout(10_000) }
 * const page = await manager.api('/account/{acc_id}/phonenumbersubscription', options)
 * ```
 */
export interface ApiOptions {
  /**
   * The HTTP method: `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
   * Default `GET`, or `POST` when `json` is given.
   */
  method?: string | undefined
  /** Added to the query string; an array repeats the name. */
  query?: Record<string, string | number | boolean | Array<string | number | boolean>> | undefined
  /** Sent as the JSON body (`content-type: application/json`). */
  json?: unknown
  /** Cancels the call; it rejects with an `AbortError`. */
  signal?: AbortSignal | undefined
  /**
   * The most this call may take in all, in ms: its token, its request, retries and the
   * waits between them. Past it the call rejects with `ERR_SONETEL_TIMEOUT`. Default
   * the manager's `callTimeoutMs`.
   */
  timeoutMs?: number | undefined
}

/**
 * Options of `TokenManager` calls.
 *
 * @example
 * ```ts
 * const accessToken = await manager.getAccessToken({ signal: AbortSignal.timeout(5_000) })
 * ```
 */
export interface CallOptions {
  /**
   * Stops waiting; the promise rejects with an `AbortError`. A token request already
   * shared with other callers goes on for them.
   */
  signal?: AbortSignal | undefined
  /**
   * The most this call may wait for a token, in ms; past it the call rejects with
   * `ERR_SONETEL_TIMEOUT` (a token request shared with other callers goes on for them).
   * Default the manager's `callTimeoutMs`.
   */
  timeoutMs?: number | undefined
}

/**
 * The password is not sent again before `untilMs` (ms since 1970).
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'cooldown') console.error('no login before', new Date(e.untilMs)) } })
 * ```
 */
export interface CooldownEvent {
  type: 'cooldown'
  untilMs: number
}

/**
 * Logs in with a Sonetel account's e-mail and password (the `password` grant).
 *
 * Same call as Sonetel's sample, `createAccessToken(username, password)`, but every
 * failure rejects with an `Error` that has a stable `code` (see the README), and the
 * whole request has a deadline.
 *
 * @example
 * ```ts
 * const token = await createAccessToken('me@example.com', process.env['SONETEL_PASSWORD'] ?? '')
 * console.log(token.access_token, token.expires_in)
 * ```
 */
export declare function createAccessToken(username: string, password: string | Uint8Array, options?: TokenRequestOptions): Promise<AccessToken>

/**
 * Decodes the claims of an access (or refresh) token. It does NOT verify the signature:
 * use it to read `exp`, `user_id` or `acc_id` of a token you got from Sonetel, never to
 * trust a token from someone else. The claims are what `JSON.parse` makes of the payload.
 *
 * Throws a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` for a non-string and
 * `ERR_INVALID_ARG_VALUE` for a string that is not a JWT.
 *
 * @example
 * ```ts
 * const { exp, acc_id } = decodeAccessToken(token.access_token)
 * console.log('account', acc_id, 'expires', new Date((exp ?? 0) * 1000))
 * ```
 */
export declare function decodeAccessToken(token: string): TokenClaims & Record<string, unknown>

/**
 * The refresh token was refused; the manager logs in with the password instead.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'fallback') console.warn('refresh token refused:', e.code) } })
 * ```
 */
export interface FallbackEvent {
  type: 'fallback'
  from: 'refresh_token'
  to: 'password'
  code: SonetelAuthErrorCode
}

/**
 * Tells whether `value` is one of this package's errors: an `Error` whose `code` is one
 * of ours and that has the properties its code promises (a numeric `status` and a string
 * `error` for `ERR_SONETEL_AUTH`, and so on). It checks what it says, so narrowing on it
 * is safe; an error with the same code and shape from elsewhere (Node's own `ABORT_ERR`)
 * passes too.
 *
 * @example
 * ```ts
 * try {
 *   await createAccessToken('me@example.com', password)
 * } catch (err) {
 *   if (isSonetelAuthError(err) && err.code === 'ERR_SONETEL_AUTH') console.error(err.status, err.error)
 *   else throw err
 * }
 * ```
 */
export declare function isSonetelAuthError(value: unknown): value is SonetelAuthError | SonetelArgumentError | SonetelAbortError

/**
 * `onToken` threw or its promise rejected; `message` is the error's message, with any
 * secret of ours replaced by `[redacted]`.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'onToken-failed') console.error('could not store the token:', e.message) } })
 * ```
 */
export interface OnTokenFailedEvent {
  type: 'onToken-failed'
  message: string
}

/**
 * Exchanges a refresh token for a new access token (the `refresh_token` grant).
 * Same options, errors and resolved shape as `createAccessToken`. The refresh token
 * never appears in an error.
 *
 * @example
 * ```ts
 * if (token.refresh_token !== undefined) {
 *   const next = await refreshAccessToken(token.refresh_token)
 *   console.log(next.access_token)
 * }
 * ```
 */
export declare function refreshAccessToken(refreshToken: string, options?: TokenRequestOptions): Promise<AccessToken>

/**
 * Sonetel refused a grant (`status`, and the OAuth `error`).
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'refused' && e.grant === 'password') console.error('password refused', e.status) } })
 * ```
 */
export interface RefusedEvent {
  type: 'refused'
  grant: 'password' | 'refresh_token'
  status: number | null
  error: string | null
}

/**
 * A token request is about to be sent. `attempt` counts from 1.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'request') metrics.increment(`sonetel.${e.grant}`) } })
 * ```
 */
export interface RequestEvent {
  type: 'request'
  grant: 'password' | 'refresh_token'
  attempt: number
}

/**
 * Attempt `attempt` failed for a transient reason; the next follows in `delayMs`.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'retry') console.warn(`retry in ${e.delayMs} ms after ${e.code}`) } })
 * ```
 */
export interface RetryEvent {
  type: 'retry'
  attempt: number
  delayMs: number
  code: SonetelAuthErrorCode
  /** The HTTP status, when there was an answer. */
  status?: number | undefined
}

/**
 * A token another process fetched was taken from the store.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'shared') console.log('shared until', e.expiresAt) } })
 * ```
 */
export interface SharedEvent {
  type: 'shared'
  expiresAt: number | null
}

/**
 * A refresh ahead of expiry failed for a transient reason (`code`); callers got the
 * still-valid token, and a later call tries again.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'stale-served') console.warn('serving the old token:', e.code) } })
 * ```
 */
export interface StaleServedEvent {
  type: 'stale-served'
  code: SonetelAuthErrorCode
}

/**
 * The store works again; the token is shared again.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'store-available') console.log('sharing again') } })
 * ```
 */
export interface StoreAvailableEvent {
  type: 'store-available'
}

/**
 * The store failed (`message` says how, without secrets); this process fetches its own
 * tokens until it works again.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'store-unavailable') console.warn(e.message) } })
 * ```
 */
export interface StoreUnavailableEvent {
  type: 'store-unavailable'
  message: string
}

/**
 * The store works, less well than it should. `reason` says how (no secret is named):
 * - `lock-not-released`: the lock could not be released; it lapses at the end of its lease.
 * - `lock-stuck`: the lock has no expiry, is not one sonetel-auth set, is not renewed, or
 *   was held longer than a fetch takes. This process fetches on its own, without waiting
 *   for it, until it sees it released.
 * - `lease-lost`: this process held the lock past its lease (stopped, or too slow to
 *   renew) and another took it; it did not write its token.
 * - `value-too-large`: the stored value is over 1 MiB; it was not read, and is replaced.
 * - `not-a-regular-file`: the `file://` store path is a FIFO, device, directory or link.
 * - `lock-file-replaced`: the `file://` lock file was removed or replaced while held, so
 *   it did not exclude anyone.
 * - `value-evicted`: the stored token vanished before its time (Redis eviction, a flush).
 * - `value-not-ours`: the stored token's `user_name` claim names another account, or the
 *   Redis key holds another type of value.
 * - `clock-behind`: Redis's clock (`TIME`) is ahead of this machine's, so the stored token
 *   looks too old to share: one of the two clocks is wrong.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, store: 'redis://127.0.0.1:6379', onEvent: (e) => { if (e.type === 'store-degraded') console.warn(e.reason, e.message ?? '') } })
 * ```
 */
export interface StoreDegradedEvent {
  type: 'store-degraded'
  reason: 'lock-not-released' | 'lock-stuck' | 'lease-lost' | 'value-too-large' | 'not-a-regular-file' | 'lock-file-replaced' | 'value-evicted' | 'value-not-ours' | 'clock-behind'
  /** More detail, when there is some. */
  message: string | null
}

/**
 * A Sonetel API answered 401 to the token just received to replace a refused one (a
 * missing scope, a blocked account): another token would be refused too. Until `untilMs`
 * (60 s), a 401 on that path is handed back (`ERR_SONETEL_HTTP`, status 401, from `api`)
 * without asking for a new token.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'api-refused') console.warn('Sonetel refuses our tokens until', new Date(e.untilMs)) } })
 * ```
 */
export interface ApiRefusedEvent {
  type: 'api-refused'
  untilMs: number
}

/**
 * `api()` sends a read (`GET`, `HEAD`) answered 429 or 503 again after `delayMs`
 * (`attempt` from 1). `path` is the request's path as sent, placeholders URL-encoded.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'api-retry') console.warn(`${e.method} ${e.path}: ${e.status}, again in ${e.delayMs} ms`) } })
 * ```
 */
export interface ApiRetryEvent {
  type: 'api-retry'
  method: string
  path: string
  status: number
  attempt: number
  delayMs: number
}

/**
 * The claims of a Sonetel JWT, as `decodeAccessToken` returns them. Every claim in the
 * token is present; these are the ones Sonetel uses.
 *
 * @example
 * ```ts
 * const claims: TokenClaims = decodeAccessToken(token.access_token)
 * const secondsLeft = (claims.exp ?? 0) - Date.now() / 1000
 * ```
 */
export interface TokenClaims {
  /** Expiry, in seconds since 1970-01-01 UTC. */
  exp?: number
  /** Issue time, in seconds since 1970-01-01 UTC. */
  iat?: number
  /** The user the token acts for. */
  user_id?: string | number
  /** The Sonetel account id. */
  acc_id?: string | number
  /** The granted scope. */
  scope?: string | string[]
  /** Issuer. */
  iss?: string
  /** Audience. */
  aud?: string | string[]
  /** Token id. */
  jti?: string
  /** The OAuth client the token was issued to (`sonetel-api`). */
  client_id?: string
}

/**
 * A new token arrived. `expiresAt` is in ms since 1970, `null` when nothing says.
 *
 * @example
 * ```ts
 * new TokenManager({ username, password, onEvent: (e) => { if (e.type === 'token') console.log('until', new Date(e.expiresAt ?? 0)) } })
 * ```
 */
export interface TokenEvent {
  type: 'token'
  grant: 'password' | 'refresh_token'
  expiresAt: number | null
}

/**
 * Everything `onEvent` receives, told apart by `type`.
 *
 * @example
 * ```ts
 * const log = (e: TokenManagerEvent): void => { if (e.type === 'retry') console.warn(e.code, e.delayMs) }
 * ```
 */
export type TokenManagerEvent = RequestEvent | TokenEvent | RetryEvent | FallbackEvent | RefusedEvent | CooldownEvent | StaleServedEvent | OnTokenFailedEvent | SharedEvent | StoreUnavailableEvent | StoreAvailableEvent | StoreDegradedEvent | ApiRefusedEvent | ApiRetryEvent

/**
 * Options of `new TokenManager(options)`: the credentials, every `TokenRequestOptions`
 * field (but `signal`), and how the manager caches, retries and reports. A name that is
 * not listed here is an error.
 *
 * @example
 * ```ts
 * const options: TokenManagerOptions = {
 *   username: 'me@example.com',
 *   password: process.env['SONETEL_PASSWORD'] ?? '',
 *   refreshMarginMs: 5 * 60_000,
 *   onToken: async (token) => { await redis.set('sonetel-token', JSON.stringify(token)) },
 * }
 * const manager = new TokenManager(options)
 * ```
 */
export interface TokenManagerOptions {
  /** The Sonetel account e-mail. */
  username: string
  /**
   * The password. A `Buffer` (any `Uint8Array`) lets the app wipe its own copy after
   * the constructor.
   */
  password: string | Uint8Array
  /** See `TokenRequestOptions.tokenUrl`. */
  tokenUrl?: string | undefined
  /** See `TokenRequestOptions.timeoutMs`; applies to each request (each attempt). Default 10000. */
  timeoutMs?: number | undefined
  /**
   * The most a call (`getAccessToken`, `api`, `fetch`, …) may take in all, in ms: its
   * token, its request, retries and the waits between them. Past it the call rejects
   * with `ERR_SONETEL_TIMEOUT`; a token request shared with other callers goes on for
   * them. Each call may give its own `timeoutMs`. Default 15000.
   */
  callTimeoutMs?: number | undefined
  /** See `TokenRequestOptions.refresh`. Default `true`. */
  refresh?: boolean | undefined
  /** See `TokenRequestOptions.ca`. */
  ca?: string | Uint8Array | Array<string | Uint8Array> | undefined
  /** See `TokenRequestOptions.proxy`. */
  proxy?: string | undefined
  /**
   * Get a new token once the cached one has less than this to live, in ms, but never
   * earlier than half-way through its lifetime. Default 60000.
   */
  refreshMarginMs?: number | undefined
  /**
   * Retries of transient failures (network, timeout, HTTP 408, 429 and 5xx, whatever
   * their body says), 0 to 10. Default 2. A refused password is never retried.
   */
  retries?: number | undefined
  /**
   * First back-off delay in ms, doubled on each retry, with jitter; a longer
   * `Retry-After` from the server wins. Default 250.
   */
  retryDelayMs?: number | undefined
  /**
   * After Sonetel refuses the password, the manager does not send it again for this
   * long (ms); calls meanwhile reject at once with the refusal. Default 300000 (5 min);
   * 0 turns it off.
   */
  authFailureCooldownMs?: number | undefined
  /**
   * Refresh on a timer ahead of expiry, so the first call after a quiet spell does not
   * wait. The timer never keeps the process alive. Default `false`.
   */
  autoRefresh?: boolean | undefined
  /**
   * A token stored earlier (for example by `onToken`), used while its JWT `exp` says it
   * is valid; its refresh token is used after that. `null` means none.
   */
  token?: AccessToken | null | undefined
  /**
   * Called with each new token, so the app can store it. The calls that wait for the
   * token do not wait for it; what it throws or rejects with is reported as an
   * `onToken-failed` event.
   */
  onToken?: ((token: AccessToken) => void | Promise<void>) | undefined
  /**
   * Called with each event (requests, tokens, retries, fallbacks, refusals, cool-downs,
   * stale tokens served, `onToken` failures). `NODE_DEBUG=sonetel-auth` prints the
   * same events on stderr. No event holds a secret.
   */
  onEvent?: ((event: TokenManagerEvent) => void) | undefined
  /**
   * The origin of Sonetel's REST API (no path) for `fetch` and `api`, the only place
   * they send the token. Default `https://public-api.sonetel.com`; plain `http:` only to loopback.
   */
  apiUrl?: string | undefined
  /**
   * Share one token with every process that names the same store (see the README's
   * "Many processes, one token"): `redis://[user:password@]host:port[/db]`,
   * `rediss://…` (TLS, verified; `ca` and `NODE_EXTRA_CA_CERTS` add trust), or
   * `file:///absolute/path` (processes on one machine). The store is an optimisation:
   * when it fails, the manager fetches on its own and says so in an event. Plain
   * `redis://` to a host other than this machine is refused without `storeSecret`.
   */
  store?: string | undefined
  /**
   * The key (Redis) the token is kept under; its lock is `<key>:lock`. Default: derived
   * from the token URL and a hash of the user name (never the name itself).
   */
  storeKey?: string | undefined
  /**
   * Encrypts what is stored (XChaCha20-Poly1305): 32 bytes, or a passphrase (a string,
   * through Argon2id). Every process of the fleet needs the same. Without it the token
   * is stored in clear.
   */
  storeSecret?: string | Uint8Array | undefined
  /**
   * How long one store operation may take before the manager carries on alone, in ms.
   * Default 1000.
   */
  storeTimeoutMs?: number | undefined
  /**
   * How long the fleet's lock is held without a renewal, in ms (1000 to 600000). Its holder
   * renews it every third of this while it fetches, so a holder that dies or is stopped
   * delays the others by one lease at most. At least twice `storeTimeoutMs`. Default
   * 5000, or three times `storeTimeoutMs` when that is more. Give every process the same.
   */
  storeLeaseMs?: number | undefined
}

/**
 * Options of every call that asks the token endpoint. Each may be `undefined`, which
 * means its default.
 *
 * @example
 * ```ts
 * const options: TokenRequestOptions = { timeoutMs: 10_000, signal: AbortSignal.timeout(15_000) }
 * await createAccessToken('me@example.com', password, options)
 * ```
 */
export interface TokenRequestOptions {
  /**
   * The token endpoint. Default `https://api.sonetel.com/SonetelAuth/beta/oauth/token`.
   * Plain `http:` is refused unless the host is loopback (`localhost`, `127.0.0.0/8`, `::1`).
   */
  tokenUrl?: string | undefined
  /**
   * One deadline, in milliseconds, for the whole request: connect, send and receive.
   * Default 10000. Must be above 0 and at most 2147483647.
   */
  timeoutMs?: number | undefined
  /** Ask for a refresh token too (`refresh=yes`). Default `true`. */
  refresh?: boolean | undefined
  /**
   * Extra PEM root certificate(s) to trust besides the built-in Mozilla roots, for
   * private test servers and corporate TLS inspection. Adds trust, never removes it. A
   * self-signed server certificate given here is accepted for the server presenting it.
   */
  ca?: string | Uint8Array | Array<string | Uint8Array> | undefined
  /**
   * Send `https:` requests through this `http://` or `https://` proxy. Without it, the
   * `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` environment variables apply. A plain-http
   * loopback URL never goes through a proxy (it would see the password).
   */
  proxy?: string | undefined
  /** Cancels the request; the promise rejects with an `AbortError` (`code` `ABORT_ERR`). */
  signal?: AbortSignal | undefined
}
