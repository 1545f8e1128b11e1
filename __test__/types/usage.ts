// Type-checked against index.d.ts by __test__/types.test.mjs (tsc --noEmit).
declare const process: { env: Record<string, string | undefined> }
import {
  createAccessToken,
  refreshAccessToken,
  decodeAccessToken,
  TokenManager,
  isSonetelAuthError,
  SonetelAuthError,
  type AccessToken,
  type TokenClaims,
  type TokenRequestOptions,
  type TokenManagerEvent,
} from 'sonetel-auth'

async function main(): Promise<void> {
  const options: TokenRequestOptions = { timeoutMs: 5000, refresh: true, signal: AbortSignal.timeout(10_000) }
  const token: AccessToken = await createAccessToken('me@example.com', 'secret', options)
  const access: string = token.access_token
  const expiresIn: number | undefined = token.expires_in
  const extra: unknown = (await createAccessToken('me@example.com', new TextEncoder().encode('secret'))).acc_id
  const next = await refreshAccessToken(token.refresh_token ?? '', { ca: ['-----BEGIN CERTIFICATE-----'] })
  const claims: TokenClaims = decodeAccessToken(next.access_token)
  const exp: number | undefined = claims.exp
  const custom: unknown = decodeAccessToken(access).user_name

  const manager = new TokenManager({
    username: 'me@example.com',
    password: 'secret',
    refreshMarginMs: 60_000,
    retries: 2,
    token,
    onToken: async (t: AccessToken) => { console.log(t.token_type) },
  })
  const header: string = await manager.authorizationHeader({ signal: new AbortController().signal })
  const bare: string = await manager.getAccessToken()
  const dropped: boolean = manager.invalidate(bare)
  manager.invalidate()
  const whole = await manager.getToken()
  const accId: unknown = whole.claims?.acc_id
  const expiresAt: number | null = whole.expiresAt
  const watched = new TokenManager({
    username: 'me@example.com',
    password: 'secret',
    token: null,
    autoRefresh: true,
    authFailureCooldownMs: 60_000,
    onEvent: (e: TokenManagerEvent) => {
      if (e.type === 'retry') console.log(e.delayMs, e.code, e.status)
      else if (e.type === 'cooldown') console.log(e.untilMs)
      // @ts-expect-error a refused event has no delayMs
      else if (e.type === 'refused') console.log(e.delayMs)
    },
  })
  const res: Response = await manager.fetch('/account/{acc_id}', { method: 'GET', signal: AbortSignal.timeout(1000) })
  const account = await manager.api<{ account_id: number }>('/account/{acc_id}', { query: { page: 1 } })
  const accountId: number = account.account_id
  const untyped: unknown = await manager.api('/make-calls/call/call-back', { json: { call1: '+4670', call2: '+4681' } })
  console.log(dropped, accId, expiresAt, watched, res.status, accountId, untyped)

  // Optional options take undefined (exactOptionalPropertyTypes): an unset variable is fine.
  const fromEnv: TokenRequestOptions = { tokenUrl: process.env['SONETEL_TOKEN_URL'], timeoutMs: undefined }
  // onToken's token has every field the server sent.
  new TokenManager({ username: 'u', password: 'p', onToken: (t) => { const userId: unknown = t.user_id; console.log(userId) } })
  // Errors narrow by code, honestly.
  const err: unknown = await createAccessToken('me@example.com', 'secret', fromEnv).catch((e: unknown) => e)
  if (isSonetelAuthError(err)) {
    if (err.code === 'ERR_SONETEL_AUTH') { const s: number = err.status; const e: string = err.error; console.log(s, e, err.retryAfterMs) }
    else if (err.code === 'ERR_SONETEL_HTTP') { const b: string = err.body; console.log(b) }
    else if (err.code === 'ERR_SONETEL_API') { console.log(err.apiCode, err.detail) }
    // @ts-expect-error a timeout has no status
    else if (err.code === 'ERR_SONETEL_TIMEOUT') console.log(err.status)
  }

  // instanceof narrows to the package's own failures, then by code.
  if (err instanceof SonetelAuthError) {
    if (err.code === 'ERR_SONETEL_NETWORK') { const c: string = err.cause.code; console.log(c, err.cause.syscall, err.cause.hostname, err.cause.port) }
    else if (err.code === 'ERR_SONETEL_CLOSED') console.log(err.name)
    // @ts-expect-error an argument error is a TypeError, never a SonetelAuthError
    else if (err.code === 'ERR_INVALID_ARG_TYPE') console.log(err)
  }
  const closing: Promise<void> = manager.close()
  await closing

  // @ts-expect-error the user name must be a string
  await createAccessToken(42, 'secret')
  // @ts-expect-error timeoutMs is a number
  await createAccessToken('me@example.com', 'secret', { timeoutMs: '5000' })
  // @ts-expect-error getAccessToken resolves with a string
  const wrong: number = await manager.getAccessToken()
  // @ts-expect-error the constructor needs a password
  new TokenManager({ username: 'me@example.com' })

  console.log(expiresIn, extra, exp, custom, header, bare, wrong)
}

void main()
