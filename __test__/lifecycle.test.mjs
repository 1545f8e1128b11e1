// refreshAccessToken, decodeAccessToken and TokenManager.
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { after, before, beforeEach, describe, test } from 'node:test'
import { addon, assertNoSecret, rejection, startSonetel, storedToken, USER, PASSWORD } from './helpers/common.mjs'

const { createAccessToken, refreshAccessToken, decodeAccessToken, TokenManager } = addon

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
})

const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl, ...opts })

/** A stored token inside its refresh margin (50 s left of the default 60 s). */
const expiringToken = (secondsLeft = 50) => storedToken(server, tokenUrl, secondsLeft)

describe('refreshAccessToken', () => {
  test('sends the refresh_token grant and gets new tokens', async () => {
    const first = await createAccessToken(USER, PASSWORD, { tokenUrl })
    server.reset()
    const next = await refreshAccessToken(first.refresh_token, { tokenUrl })
    assert.deepEqual(server.requests[0].fields, { grant_type: 'refresh_token', refresh_token: first.refresh_token, refresh: 'yes' })
    assert.equal(server.requests[0].headers.authorization, 'Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64'))
    assert.notEqual(next.access_token, first.access_token)
    assert.ok(next.refresh_token)
    assert.equal(decodeAccessToken(next.access_token).user_name, USER)
  })

  test('refresh: false sends refresh=no', async () => {
    const first = await createAccessToken(USER, PASSWORD, { tokenUrl })
    server.reset()
    const next = await refreshAccessToken(first.refresh_token, { tokenUrl, refresh: false })
    assert.equal(server.requests[0].fields.refresh, 'no')
    assert.equal(next.refresh_token, undefined)
  })

  test('a revoked refresh token is ERR_SONETEL_AUTH, and the token echoed by the server is scrubbed', async () => {
    const first = await createAccessToken(USER, PASSWORD, { tokenUrl })
    server.revokeRefreshTokens()
    const { err } = await rejection(refreshAccessToken(first.refresh_token, { tokenUrl }), 'ERR_SONETEL_AUTH', {
      status: 400, error: 'invalid_grant', error_description: 'Invalid refresh token: [redacted]',
    })
    assertNoSecret(err, [first.refresh_token])
  })
})

describe('decodeAccessToken', () => {
  test('returns every claim, without checking the signature', async () => {
    const { access_token: token } = await createAccessToken(USER, PASSWORD, { tokenUrl })
    const claims = decodeAccessToken(token)
    const expected = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'))
    assert.deepEqual(claims, expected)
    for (const key of ['exp', 'iat', 'user_id', 'acc_id', 'scope', 'iss', 'aud', 'jti', 'client_id']) assert.ok(key in claims, key)
    const forged = token.split('.').slice(0, 2).join('.') + '.bm90LWEtc2lnbmF0dXJl'
    assert.deepEqual(decodeAccessToken(forged), expected)
  })

  test('random input never crashes: it returns claims or throws ERR_INVALID_ARG_VALUE', () => {
    let seed = 42
    const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const alphabet = 'eyJ0.-_=+/AZaz09{}":,\u0000\uD800\u00e9'
    const b64 = (s) => Buffer.from(s).toString('base64url')
    for (let i = 0; i < 20000; i++) {
      const kind = rand(3)
      const s = kind === 0
        ? Array.from({ length: rand(60) }, () => alphabet[rand(alphabet.length)]).join('')
        : kind === 1
          ? `${b64('{}')}.${b64(JSON.stringify(Array.from({ length: rand(5) }, () => rand(100))))}.x`
          : `${b64('{"alg":"none"}')}.${b64(`{"exp":${rand(1e9)},"k":"${'v'.repeat(rand(20))}"}`)}.${'s'.repeat(rand(3))}`
      try {
        const claims = decodeAccessToken(s)
        assert.equal(typeof claims, 'object')
      } catch (e) {
        assert.equal(e.code, 'ERR_INVALID_ARG_VALUE', `${JSON.stringify(s)}: ${e.message}`)
      }
    }
  })
})

describe('TokenManager', () => {
  test('1000 concurrent calls on an empty cache cause exactly one token request', async () => {
    const m = manager()
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => m.getAccessToken()))
    assert.equal(new Set(tokens).size, 1)
    assert.equal(server.requests.length, 1)
    assert.equal(server.counts.password, 1)
    // Cached now: more calls, no more requests.
    assert.equal(await m.getAccessToken(), tokens[0])
    assert.equal(server.requests.length, 1)
  })

  test('1000 concurrent calls on an expiring token cause exactly one refresh request', async () => {
    const m = manager({ token: await expiringToken() })
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => m.getAccessToken()))
    assert.equal(new Set(tokens).size, 1)
    assert.deepEqual(server.counts, { password: 0, refresh_token: 1, other: 0 })
  })

  test('refreshes ahead of expiry: a token inside the margin is replaced, with the refresh grant', async () => {
    const stored = await expiringToken(50) // 50 s left, inside the default 60 s margin
    const eager = manager({ token: stored })
    const second = await eager.getAccessToken()
    assert.notEqual(second, stored.access_token)
    assert.deepEqual(server.counts, { password: 0, refresh_token: 1, other: 0 })
    assert.equal(await eager.getAccessToken(), second, 'the new token is cached')

    server.reset()
    const relaxed = manager({ refreshMarginMs: 30_000 })
    assert.equal(await relaxed.getAccessToken(), await relaxed.getAccessToken())
    assert.deepEqual(server.counts, { password: 1, refresh_token: 0, other: 0 })
  })

  test('uses expires_in when the access token is not a JWT', async () => {
    server.fault('body', { times: 1, body: JSON.stringify({ access_token: 'opaque-token', token_type: 'bearer', expires_in: 3600 }) })
    const m = manager()
    assert.equal(await m.getAccessToken(), 'opaque-token')
    assert.equal(await m.getAccessToken(), 'opaque-token')
    assert.equal(server.requests.length, 1)
  })

  test('falls back to the password grant when the refresh token is revoked', async () => {
    const m = manager()
    const first = await m.getAccessToken()
    server.revokeRefreshTokens()
    m.invalidate()
    const second = await m.getAccessToken()
    assert.notEqual(second, first)
    assert.deepEqual(server.counts, { password: 2, refresh_token: 1, other: 0 })
  })

  test('restores a stored token and makes no request while it is valid', async () => {
    const stored = await createAccessToken(USER, PASSWORD, { tokenUrl })
    server.reset()
    const m = manager({ token: JSON.parse(JSON.stringify(stored)) })
    assert.equal(await m.getAccessToken(), stored.access_token)
    assert.equal(server.requests.length, 0)
    // And uses its refresh token when it needs a new one.
    m.invalidate()
    await m.getAccessToken()
    assert.deepEqual(server.counts, { password: 0, refresh_token: 1, other: 0 })
    assert.equal(server.requests[0].fields.refresh_token, stored.refresh_token)
  })

  test('onToken is called once per new token, with the whole token', async () => {
    const seen = []
    const m = manager({ onToken: (t) => seen.push(t) })
    await Promise.all(Array.from({ length: 100 }, () => m.getAccessToken()))
    assert.equal(seen.length, 1)
    assert.equal(seen[0].token_type, 'bearer')
    assert.ok(seen[0].refresh_token)
    await m.getAccessToken()
    assert.equal(seen.length, 1, 'not for a cached token')
    m.invalidate()
    const latest = await m.getAccessToken()
    assert.equal(seen.length, 2)
    assert.equal(seen[1].access_token, latest)
  })

  test('an onToken that throws or rejects breaks nothing', async () => {
    let unhandled = 0
    const onUnhandled = () => { unhandled++ }
    process.on('unhandledRejection', onUnhandled)
    try {
      const throwing = manager({ onToken: () => { throw new Error('disk full') } })
      assert.ok(await throwing.getAccessToken())
      const rejecting = manager({ onToken: async () => { throw new Error('redis down') } })
      assert.ok(await rejecting.getAccessToken())
      await new Promise((r) => setTimeout(r, 50))
      assert.equal(unhandled, 0)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  test('retries a 503 with back-off, then succeeds', async () => {
    server.fault('status', { times: 2, status: 503 })
    const m = manager({ retries: 2, retryDelayMs: 20 })
    assert.ok(await m.getAccessToken())
    assert.equal(server.requests.length, 3)
  })

  test('honours Retry-After', async () => {
    server.fault('status', { times: 1, status: 503, retryAfter: 1 })
    const m = manager({ retries: 1, retryDelayMs: 1 })
    const started = performance.now()
    await m.getAccessToken()
    assert.ok(performance.now() - started >= 950, 'waited for Retry-After')
    assert.equal(server.requests.length, 2)
  })

  test('gives up after the retries, with the last error', async () => {
    server.fault('status', { status: 503 })
    const m = manager({ retries: 2, retryDelayMs: 5 })
    await rejection(m.getAccessToken(), 'ERR_SONETEL_HTTP', { status: 503 })
    assert.equal(server.requests.length, 3)
  })

  test('never retries a refused password', async () => {
    const m = manager({ password: 'wrong-password', retries: 5, retryDelayMs: 5 })
    const { err } = await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH', { error: 'invalid_grant' })
    assert.equal(server.requests.length, 1)
    assertNoSecret(err, ['wrong-password'])
  })

  test('a failure reaches every waiter, and the next call tries again', async () => {
    server.fault('status', { times: 1, status: 500 })
    const m = manager({ retries: 0 })
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => m.getAccessToken()))
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === 'ERR_SONETEL_HTTP'))
    assert.equal(server.requests.length, 1)
    assert.ok(await m.getAccessToken())
    assert.equal(server.requests.length, 2)
  })

  test('invalidate() makes the next call fetch a new token', async () => {
    const m = manager()
    const first = await m.getAccessToken()
    m.invalidate()
    const second = await m.getAccessToken()
    assert.notEqual(second, first)
    assert.equal(server.counts.refresh_token, 1)
  })

  test('authorizationHeader() gives "Bearer <token>"', async () => {
    const m = manager()
    assert.equal(await m.authorizationHeader(), `Bearer ${await m.getAccessToken()}`)
  })

  test('an aborted waiter stops waiting; the shared request goes on for the others', async () => {
    server.fault('delay', { times: 1, ms: 300 })
    const m = manager()
    const ac = new AbortController()
    const quitter = m.getAccessToken({ signal: ac.signal })
    const stayer = m.getAccessToken()
    ac.abort()
    await rejection(quitter, 'ABORT_ERR', { name: 'AbortError' })
    assert.ok(await stayer)
    assert.equal(server.requests.length, 1)
  })

  test('shows no secret in inspect() or JSON.stringify()', async () => {
    const m = manager()
    const token = await m.getAccessToken()
    for (const text of [inspect(m, { depth: Infinity, showHidden: true }), JSON.stringify(m)]) {
      assert.ok(!text.includes(PASSWORD))
      assert.ok(!text.includes(token))
    }
  })
})
