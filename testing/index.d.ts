// Types of sonetel-auth/testing: local stand-ins for Sonetel's token endpoint and REST API,
// for testing code that uses sonetel-auth.

declare global {
  // For `await using sonetel = await startSonetel()`; lib.esnext.disposable and @types/node
  // declare the same.
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol
  }
}

/**
 * Options of {@link startSonetel}. Every one is optional.
 *
 * @example
 * ```ts
 * const options: SonetelStandInOptions = { username: 'ops@example.com', password: 'a test password', accessTokenLifetime: 5 }
 * const sonetel = await startSonetel(options)
 * ```
 */
export interface SonetelStandInOptions {
  /** The account's e-mail. Default `demo@example.com`. */
  username?: string
  /** Its password. Default `demo-password`. */
  password?: string
  /** More accounts, e-mail to password, besides `username`. */
  users?: Record<string, string>
  /**
   * Seconds an access token lives (its `exp` and `expires_in`). Default 86400, as
   * Sonetel's. A short one is how a test sees a token expire: the token manager keeps
   * time with the system's monotonic clock, which fake timers do not move.
   */
  accessTokenLifetime?: number
  /** Seconds a refresh token lives. Default 30 days. */
  refreshTokenLifetime?: number
  /** Seconds the stand-in's clock is ahead of this machine's (negative: behind). Default 0. */
  clockOffset?: number
  /**
   * Rotate refresh tokens: each works once, and every refresh grant answers with a new
   * one (OAuth's refresh token rotation). Default false, as Sonetel's.
   */
  rotateRefreshTokens?: boolean
  /**
   * Serve both over HTTPS, with a certificate for `localhost` and `127.0.0.1` from a CA
   * made at start (with the `openssl` command); pass `ca` from the result to sonetel-auth.
   */
  https?: boolean
  /** With `https`: your own certificate (PEM) instead of a generated one. */
  cert?: string
  /** With `cert`: its private key (PEM). */
  key?: string
}

/**
 * A request a stand-in received, as it received it.
 *
 * @example
 * ```ts
 * const last: StandInRequest | undefined = sonetel.requests.at(-1)
 * console.log(last?.fields?.grant_type, last?.headers['content-type'])
 * ```
 */
export interface StandInRequest {
  readonly method: string
  /** The path; the API's includes the query. */
  readonly path: string
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The body as text. */
  readonly body: string
  /** Token endpoint only: the form fields (`grant_type`, `username`, `refresh`, …). */
  readonly fields?: Readonly<Record<string, string>>
  /** Token endpoint only: the request's `content-type`. */
  readonly contentType?: string
}

/** How the token endpoint misbehaves; see {@link SonetelStandIn.fault}. */
export type StandInFault =
  | 'delay' | 'hang' | 'close' | 'stall-body' | 'reset' | 'status' | 'rate-limit' | 'redirect' | 'body' | 'huge'

/**
 * How the REST API misbehaves, as what stands before it does when it is busy or down;
 * see {@link SonetelStandIn.apiFault}.
 */
export type StandInApiFault = 'delay' | 'hang' | 'close' | 'status' | 'rate-limit'

/**
 * Details of a fault.
 *
 * @example
 * ```ts
 * sonetel.fault('rate-limit', { retryAfter: 2, times: 1 }) // one 429, then normal answers
 * sonetel.fault('delay', { ms: 500 })                      // every answer half a second late
 * ```
 */
export interface StandInFaultOptions {
  /** How many requests it applies to. Default: all, until `clearFaults()`. */
  times?: number
  /** `delay`: milliseconds before the normal answer, or a function of the request that returns them. */
  ms?: number | ((request: StandInRequest) => number)
  /** `delay`: instead of `ms`, the normal answer once this promise settles (a gate a test opens). */
  until?: PromiseLike<unknown>
  /** `status`, `redirect`, `body`: the HTTP status, 200 to 599 (defaults 500, 307, 200). */
  status?: number
  /** `status`, `body`: the body to send (`status` default: nginx's HTML error page). */
  body?: string
  /** `body`: its content type. Default `application/json`. */
  contentType?: string
  /** `status`, `rate-limit`: a `Retry-After` header. */
  retryAfter?: number | string
  /** `redirect`: where to. */
  location?: string
  /** `huge`: how many bytes of body. Default 8 MiB. */
  bytes?: number
}

/**
 * The running stand-ins. Point sonetel-auth at them with `tokenUrl` and `apiUrl`.
 *
 * @example
 * ```ts
 * const sonetel = await startSonetel({ accessTokenLifetime: 120 })
 * const manager = new TokenManager({
 *   username: sonetel.username, password: sonetel.password,
 *   tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl,
 * })
 * await manager.api('/make-calls/call/call-back', { method: 'POST', json: { call1: '+46701234567', call2: '+46812345678' } })
 * console.log(sonetel.sent('password'), sonetel.apiRequests.length) // 1 1
 * await manager.close()
 * await sonetel.close()
 * ```
 */
export interface SonetelStandIn {
  /** The token endpoint: pass it as `tokenUrl`. */
  readonly tokenUrl: string
  /** The REST API's origin: pass it as `apiUrl`. */
  readonly apiUrl: string
  /** The account's e-mail. */
  readonly username: string
  /** Its password. */
  readonly password: string
  /** Every account, e-mail to password. Change a password here as a user would on Sonetel's site. */
  readonly users: Record<string, string>
  /** With `https` and a generated certificate: the CA to pass as sonetel-auth's `ca`. */
  readonly ca: string | undefined
  /** Every request the token endpoint received, oldest first (also those a fault answered). */
  readonly requests: readonly StandInRequest[]
  /** Every request the REST API received, oldest first. */
  readonly apiRequests: readonly StandInRequest[]
  /** Token requests by `grant_type` that were answered normally (`sent()` also counts those a fault answered). */
  readonly counts: { readonly password: number; readonly refresh_token: number; readonly other: number }
  /** Seconds an access token issued from now on lives. */
  accessTokenLifetime: number
  /** Seconds a refresh token issued from now on lives. */
  refreshTokenLifetime: number
  /** Seconds the stand-in's clock is ahead of this machine's; moves `iat`, `exp` and its checks. */
  clockOffset: number
  /** Refresh tokens work once, and each refresh grant brings a new one. */
  rotateRefreshTokens: boolean
  /**
   * The API answers 401 to every access token, new ones too (an account that lost its
   * API access, a token without the scope it needs).
   */
  refuseApiTokens: boolean
  /** How many token requests with this `grant_type` arrived. */
  sent(grantType: 'password' | 'refresh_token'): number
  /**
   * Makes the token endpoint misbehave: `delay` (`ms`), `hang` (never answers), `close`
   * (drops the connection), `stall-body` and `reset` (a body that stops or breaks),
   * `status` (an HTML error page, `retryAfter`), `rate-limit` (an OAuth 429), `redirect`,
   * `body` (any body), `huge` (a body of `bytes`). Faults queue up in order.
   */
  fault(mode: StandInFault, options?: StandInFaultOptions): this
  /** Ends every fault. */
  clearFaults(): void
  /**
   * Makes the REST API misbehave, before it checks the token (as a gateway in front of
   * it would): `delay` (`ms`, or `until` a promise settles), `hang` (never answers), `close` (drops the connection),
   * `status` (default 503) and `rate-limit` (429), each with a JSON failure body (or
   * `body`) and `retryAfter` as a `Retry-After` header. Faults queue up in order; each
   * request they answer is in `apiRequests` too.
   *
   * @example
   * ```ts
   * import { startSonetel } from 'sonetel-auth/testing'
   * const sonetel = await startSonetel()
   * sonetel.apiFault('rate-limit', { retryAfter: 1, times: 1 }) // one 429, then normal answers
   * ```
   */
  apiFault(mode: StandInApiFault, options?: Omit<StandInFaultOptions, 'location' | 'bytes'>): this
  /** Ends every API fault. */
  clearApiFaults(): void
  /**
   * The next authorised API request is answered `{"status":"failed","response":{code,detail}}`
   * with HTTP `status` (default 200, as Sonetel answers most failures).
   */
  failApi(code: string, detail?: string, status?: number): this
  /** Makes every access token issued so far invalid: the API answers 401 to it. */
  revokeAccessTokens(): void
  /** Makes every refresh token issued so far invalid: a refresh is refused (400 invalid_grant). */
  revokeRefreshTokens(): void
  /** Closes every open connection to the stand-ins, as a server restart would. */
  dropConnections(): void
  /** Forgets the requests received and the counts, and ends every fault (the API's too). */
  reset(): void
  /** Stops both servers. */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * Starts local stand-ins for Sonetel's token endpoint and REST API on 127.0.0.1, each on a
 * free port. They behave as the real service does: HTTP Basic client credentials,
 * multipart and urlencoded grants, JWT access tokens with `acc_id`, `user_id` and
 * `user_name`, refresh tokens, Spring's OAuth errors, and the API's
 * `{"status","response"}` envelope with failures answered as HTTP 200. A request body over
 * 1 MiB is answered 413 and not kept, as a server in front of Sonetel caps it. The API serves
 * `/account/{acc_id}`, `/account/{acc_id}/phonenumbersubscription/`,
 * `/account/{acc_id}/user/` and `POST /make-calls/call/call-back`.
 *
 * @example
 * ```ts
 * import { createAccessToken } from 'sonetel-auth'
 * import { startSonetel } from 'sonetel-auth/testing'
 *
 * const sonetel = await startSonetel()
 * const token = await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl })
 * sonetel.fault('status', { status: 503, times: 1 })
 * await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl }).catch((e) => e.code) // 'ERR_SONETEL_HTTP'
 * await sonetel.close()
 * ```
 */
export declare function startSonetel(options?: SonetelStandInOptions): Promise<SonetelStandIn>
