// TokenManager on production traffic: rate limits, refused passwords, stale-token storms,
// clock skew, a refresh ahead of expiry that fails, automatic refresh, and the events
// that make all of it visible. Against the local Sonetel stand-in; no test relies on a
// timing that a busy machine could miss (waits are only ever longer than needed).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, beforeEach, describe, test } from 'node:test'
import { addon, assertNoSecret, rejection, startSonetel, storedToken as sharedStoredToken, within, USER, PASSWORD } from './helpers/common.mjs'

const { createAccessToken, decodeAccessToken, TokenManager } = addon

let server
let tokenUrl
before(async () => {
  server = await startSonetel()
  tokenUrl = server.tokenUrl
})
after(() => server.close())
beforeEach(() => {
  server.reset()
  server.accessTokenLifetime = 86400
  server.clockOffset = 0
})

const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl, retryDelayMs: 1, ...opts })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const storedToken = (secondsLeft) => sharedStoredToken(server, tokenUrl, secondsLeft)

describe('1. transient means transient: 408, 429 and 5xx are retried whatever their body', () => {
  test('createAccessToken: an OAuth-shaped 429 is ERR_SONETEL_AUTH with status 429 and retryAfterMs', async () => {
    server.fault('rate-limit', { times: 1, retryAfter: 7 })
    const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH', {
      status: 429, error: 'too_many_requests', retryAfterMs: 7000,
    })
    assert.match(err.message, /try later/)
  })

  test('the manager retries a 429 after Retry-After, and says so in events', async () => {
    server.fault('rate-limit', { times: 1, retryAfter: 1 })
    const events = []
    const started = performance.now()
    assert.ok(await manager({ onEvent: (e) => events.push(e) }).getAccessToken())
    assert.ok(performance.now() - started >= 950, 'waited for Retry-After')
    assert.equal(server.sent('password'), 2)
    const retry = events.find((e) => e.type === 'retry')
    assert.deepEqual({ ...retry, delayMs: undefined }, { type: 'retry', attempt: 1, delayMs: undefined, code: 'ERR_SONETEL_AUTH', status: 429 })
    assert.ok(retry.delayMs >= 1000)
  })

  test('a refresh answered 429 then 200 yields a token with no password grant', async () => {
    const m = manager({ token: await storedToken(-10) })
    server.fault('rate-limit', { times: 1, retryAfter: 0 })
    assert.ok(await m.getAccessToken())
    assert.equal(server.sent('refresh_token'), 2)
    assert.equal(server.sent('password'), 0)
  })

  test('a rate-limited refresh never falls back to the password, even when retries run out', async () => {
    const m = manager({ token: await storedToken(-10), retries: 1 })
    server.fault('rate-limit', { retryAfter: 0 })
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', { status: 429 })
    assert.equal(server.sent('password'), 0)
    assert.equal(server.sent('refresh_token'), 2)
  })

  test('a 408 is retried', async () => {
    server.fault('status', { times: 1, status: 408 })
    assert.ok(await manager().getAccessToken())
    assert.equal(server.sent('password'), 2)
  })
})

describe('2. a refused password is remembered for a cool-down', () => {
  test('50 calls with a wrong password send it once; the others reject at once with the refusal', async () => {
    const m = manager({ password: 'wrong-password' })
    const first = await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', { status: 400, error: 'invalid_grant' })
    for (let i = 0; i < 49; i++) {
      const { err, ms } = await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', {
        status: 400, error: 'invalid_grant', error_description: 'Bad credentials',
      })
      assert.ok(err.retryAfterMs > 0 && err.retryAfterMs <= 300_000)
      assert.match(err.message, /authFailureCooldownMs/)
      assert.ok(ms < first.ms + 1000)
      assertNoSecret(err, ['wrong-password'])
    }
    assert.equal(server.sent('password'), 1)
  })

  test('1000 concurrent callers during a cool-down make zero requests', async () => {
    const m = manager({ password: 'wrong-password' })
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
    server.reset()
    const results = await Promise.allSettled(Array.from({ length: 1000 }, () => m.getAccessToken()))
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === 'ERR_SONETEL_AUTH'))
    assert.equal(server.requests.length, 0)
  })

  test('an unknown user (401) starts the cool-down too; a concurrent burst sends one attempt', async () => {
    const m = manager({ username: 'nobody@example.com' })
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => m.getAccessToken()))
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.status === 401))
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', { status: 401, error: 'unauthorized' })
    assert.equal(server.sent('password'), 1)
  })

  test('after the cool-down the password is tried again', async () => {
    const m = manager({ password: 'wrong-password', authFailureCooldownMs: 200 })
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
    await sleep(400)
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
    assert.equal(server.sent('password'), 2)
  })

  test('a refresh token Sonetel refused is not tried again, so the cool-down holds (password changed, sessions revoked)', async () => {
    const m = manager()
    await m.getAccessToken()
    const users = server.users
    const before = users[USER]
    users[USER] = 'changed-by-an-admin'
    try {
      server.revokeRefreshTokens()
      server.reset()
      m.invalidate()
      for (let i = 0; i < 20; i++) await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
      assert.deepEqual(server.counts, { password: 1, refresh_token: 1, other: 0 })
    } finally {
      users[USER] = before
    }
  })

  test('authFailureCooldownMs: 0 turns it off', async () => {
    const m = manager({ password: 'wrong-password', authFailureCooldownMs: 0 })
    for (let i = 0; i < 3; i++) await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
    assert.equal(server.sent('password'), 3)
  })
})

describe('3. invalidate(staleToken)', () => {
  test('twenty 401s for one stale token, 5 ms apart, make exactly one new token request', async () => {
    const m = manager()
    const stale = await m.getAccessToken()
    server.reset()
    const fresh = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      await sleep(5 * i)
      m.invalidate(stale) // as the README's handler does after a 401
      return m.getAccessToken()
    }))
    assert.equal(server.counts.refresh_token + server.counts.password, 1)
    assert.equal(new Set(fresh).size, 1)
    assert.notEqual(fresh[0], stale)
  })

  test('returns whether the token was dropped; without an argument it always is', async () => {
    const m = manager()
    const first = await m.getAccessToken()
    assert.equal(m.invalidate(first), true)
    const second = await m.getAccessToken()
    assert.equal(m.invalidate(first), false, 'a stale token no longer current')
    assert.equal(await m.getAccessToken(), second)
    assert.equal(m.invalidate(), true)
    assert.notEqual(await m.getAccessToken(), second)
  })

  test('a stale token that is not a string throws ERR_INVALID_ARG_TYPE', () => {
    assert.throws(() => manager().invalidate(42), { code: 'ERR_INVALID_ARG_TYPE' })
  })
})

describe('4. expiry that survives clock skew and short lifetimes', () => {
  test('a server clock two hours behind, one-hour tokens: 100 calls, 1 request', async () => {
    server.clockOffset = -7200
    server.accessTokenLifetime = 3600
    const m = manager()
    for (let i = 0; i < 100; i++) await m.getAccessToken()
    assert.equal(server.requests.length, 1)
    const { expiresAt } = await m.getToken()
    const inAnHour = Date.now() + 3599_000
    assert.ok(Math.abs(expiresAt - inAnHour) < 60_000, `expiresAt ${new Date(expiresAt).toISOString()}`)
  })

  test('a server clock two hours ahead: the token is still used for its lifetime', async () => {
    server.clockOffset = 7200
    server.accessTokenLifetime = 3600
    const m = manager()
    for (let i = 0; i < 50; i++) await m.getAccessToken()
    assert.equal(server.requests.length, 1)
  })

  test('a token that lives less than refreshMarginMs: 100 calls, 1 request', async () => {
    server.accessTokenLifetime = 30 // seconds, under the default 60 s margin
    const m = manager()
    for (let i = 0; i < 100; i++) await m.getAccessToken()
    assert.equal(server.requests.length, 1)
  })
})

describe('5. stale-while-refresh', () => {
  test('a refresh ahead of expiry that hangs does not hold callers: they get the still-valid token', async () => {
    const stored = await storedToken(50)
    const m = manager({ token: stored, timeoutMs: 120_000 })
    server.fault('hang', { times: 1 })
    // The refresh waits up to 120 s; the caller must not (2 s at most, with 50 s left).
    assert.equal(await within(m.getAccessToken(), 60_000), stored.access_token)
    assert.equal(await m.getAccessToken(), stored.access_token)
    assert.equal(server.requests.length, 1, 'one refresh under way, joined')
  })

  test('a refresh ahead of expiry that gets a 500 serves the still-valid token, and reports it', async () => {
    const stored = await storedToken(50) // inside the 60 s margin, still valid
    const events = []
    // A back-off the next call cannot outlast on a busy machine (the default here is 1 ms).
    const m = manager({ token: stored, onEvent: (e) => events.push(e), retryDelayMs: 10_000 })
    server.fault('status', { times: 1, status: 500 })
    assert.equal(await m.getAccessToken(), stored.access_token)
    assert.deepEqual(events.find((e) => e.type === 'stale-served'), { type: 'stale-served', code: 'ERR_SONETEL_HTTP' })
    // The next call backs off instead of asking again at once.
    assert.equal(await m.getAccessToken(), stored.access_token)
    assert.equal(server.requests.length, 1)
  })

  test('once the token has actually expired, the error reaches the caller', async () => {
    const m = manager({ token: await storedToken(-5), retries: 0 })
    server.fault('status', { times: 1, status: 500 })
    await rejection(m.getAccessToken(), 'ERR_SONETEL_HTTP', { status: 500 })
  })

  test('a refused refresh is not hidden behind the stale token', async () => {
    const m = manager({ token: await storedToken(50), password: 'wrong-password' })
    server.revokeRefreshTokens()
    await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', { status: 400 })
  })
})

describe('6. small traps', () => {
  test('token: null and undefined mean "no stored token"', async () => {
    assert.ok(await manager({ token: null }).getAccessToken())
    assert.ok(await manager({ token: undefined }).getAccessToken())
  })

  test('an onToken that rejects is an onToken-failed event, never an unhandled rejection', async () => {
    let unhandled = 0
    const count = () => { unhandled++ }
    process.on('unhandledRejection', count)
    try {
      const events = []
      let done
      const reported = new Promise((r) => { done = r })
      const m = manager({
        onToken: async () => { throw new Error('redis is down') },
        onEvent: (e) => { events.push(e); if (e.type === 'onToken-failed') done() },
      })
      assert.ok(await m.getAccessToken())
      await reported
      assert.deepEqual(events.at(-1), { type: 'onToken-failed', message: 'redis is down' })
      const throwing = manager({ onToken: () => { throw new Error('disk full') }, onEvent: (e) => events.push(e) })
      assert.ok(await throwing.getAccessToken())
      assert.deepEqual(events.at(-1), { type: 'onToken-failed', message: 'disk full' })
      // A long message quoting the token: scrubbed before it is cut short.
      let token
      const quoting = manager({ onToken: (t) => { token = t.access_token; throw new Error('x'.repeat(450) + ' ' + t.access_token) }, onEvent: (e) => events.push(e) })
      assert.ok(await quoting.getAccessToken())
      const { message } = events.at(-1)
      assert.ok(!message.includes(token.slice(0, 40)), message)
      assert.match(message, /\[redacted\]$/)
      await sleep(20)
      assert.equal(unhandled, 0)
    } finally {
      process.off('unhandledRejection', count)
    }
  })

  test('getToken() gives the whole token, its expiry and its claims', async () => {
    const m = manager()
    const token = await m.getToken()
    assert.equal(token.token_type, 'bearer')
    assert.ok(token.refresh_token)
    assert.equal(token.access_token, await m.getAccessToken())
    assert.deepEqual(token.claims, decodeAccessToken(token.access_token))
    assert.equal(token.claims.acc_id, token.acc_id)
    assert.ok(token.expiresAt > Date.now() + 86000_000 && token.expiresAt <= Date.now() + 86400_000)
    assert.equal(server.requests.length, 1)
  })
})

describe('7. events and NODE_DEBUG', () => {
  test('retry then success', async () => {
    server.fault('status', { times: 1, status: 503 })
    const events = []
    await manager({ onEvent: (e) => events.push(e) }).getAccessToken()
    assert.deepEqual(events.map((e) => e.type), ['request', 'retry', 'request', 'token'])
    assert.deepEqual(events[0], { type: 'request', grant: 'password', attempt: 1 })
    assert.equal(events[1].code, 'ERR_SONETEL_HTTP')
    assert.equal(events[1].status, 503)
    assert.deepEqual(events[2], { type: 'request', grant: 'password', attempt: 2 })
    assert.equal(events[3].grant, 'password')
    assert.ok(events[3].expiresAt > Date.now())
  })

  test('refresh refused, then the password', async () => {
    const events = []
    const m = manager({ token: await storedToken(-10), onEvent: (e) => events.push(e) })
    server.revokeRefreshTokens()
    await m.getAccessToken()
    assert.deepEqual(events.slice(0, 4), [
      { type: 'request', grant: 'refresh_token', attempt: 1 },
      { type: 'refused', grant: 'refresh_token', status: 400, error: 'invalid_grant' },
      { type: 'fallback', from: 'refresh_token', to: 'password', code: 'ERR_SONETEL_AUTH' },
      { type: 'request', grant: 'password', attempt: 1 },
    ])
    assert.equal(events[4].type, 'token')
  })

  test('a refusal starts a cool-down event', async () => {
    const events = []
    await rejection(manager({ password: 'wrong-password', onEvent: (e) => events.push(e) }).getAccessToken(), 'ERR_SONETEL_AUTH')
    assert.deepEqual(events.slice(0, 2), [
      { type: 'request', grant: 'password', attempt: 1 },
      { type: 'refused', grant: 'password', status: 400, error: 'invalid_grant' },
    ])
    assert.equal(events[2].type, 'cooldown')
    assert.ok(events[2].untilMs > Date.now() + 290_000)
  })

  test('NODE_DEBUG=sonetel-auth prints every event as one line; no event or line holds a secret', () => {
    const child = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/events.cjs', import.meta.url))], {
      encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'http,sonetel-*' }, timeout: 60_000,
    })
    assert.equal(child.status, 0, child.stderr)
    const out = JSON.parse(child.stdout)
    const lines = child.stderr.split('\n').filter((l) => l.startsWith('SONETEL-AUTH '))
    assert.ok(lines.length >= out.events.length && out.events.length >= 10, `${lines.length} lines, ${out.events.length} events`)
    for (const line of lines) assert.match(line, /^SONETEL-AUTH \d+: \{"type":"[a-zA-Z-]+"/)
    const types = new Set(out.events.map((e) => e.type))
    for (const type of ['request', 'token', 'retry', 'fallback', 'refused', 'cooldown', 'stale-served', 'onToken-failed']) {
      assert.ok(types.has(type), `saw a ${type} event`)
    }
    const everything = JSON.stringify(out.events) + child.stderr
    for (const secret of out.secrets) assert.ok(!everything.includes(secret), 'a secret leaked into an event or a debug line')
  })
})

describe('autoRefresh', () => {
  test('refreshes ahead of expiry without any call', async () => {
    server.accessTokenLifetime = 4 // seconds: the margin is capped at 2 s
    const seen = []
    let second
    const refreshed = new Promise((r) => { second = r })
    const m = manager({ autoRefresh: true, onToken: (t) => { seen.push(t.access_token); if (seen.length === 2) second() } })
    const first = await m.getAccessToken()
    await refreshed
    assert.equal(seen[0], first)
    assert.notEqual(seen[1], first)
    assert.equal(server.counts.refresh_token, 1)
    assert.equal(await m.getAccessToken(), seen[1], 'the refreshed token is the cached one')
  })

  test('the timer never keeps the process alive', () => {
    const child = spawnSync(process.execPath, ['-e', `
      const { TokenManager } = require(${JSON.stringify(fileURLToPath(new URL('..', import.meta.url)))})
      const { startSonetel } = require('sonetel-auth/testing')
      startSonetel().then(async (s) => {
        const m = new TokenManager({ username: '${USER}', password: '${PASSWORD}', tokenUrl: s.tokenUrl, autoRefresh: true })
        await m.getAccessToken()
        await s.close()
        console.log('idle')
      })
    `], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(child.signal, null, 'the process did not exit by itself')
    assert.equal(child.status, 0, child.stderr)
    assert.match(child.stdout, /idle/)
  })
})
