// What a request handler relies on: api()'s retry policy (reads answered 429 or 503 sent
// again after Retry-After, writes never twice), deadlines for a whole call, errors that
// name the request and the side that failed and that serialise for loggers, placeholders
// checked before anything is sent, a manager configured from the environment and shown
// by util.inspect. Against the stand-ins, with their API-side faults.
import assert from 'node:assert/strict'
import net from 'node:net'
import { inspect } from 'node:util'
import { createRequire } from 'node:module'
import { after, before, beforeEach, describe, test } from 'node:test'
import { addon, assertNoSecret, rejection, startSonetel, within, USER, PASSWORD } from './helpers/common.mjs'

const { TokenManager, createAccessToken, isSonetelAuthError } = addon
const require = createRequire(import.meta.url)

let sonetel
before(async () => {
  sonetel = await startSonetel()
})
after(() => sonetel.close())
beforeEach(() => {
  sonetel.reset()
})

const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl, retryDelayMs: 1, ...opts })
/** The API requests made for `path` (a stand-in record's path holds the query too). */
const sentTo = (path) => sonetel.apiRequests.filter((r) => r.path.split('?')[0] === path)
const accountPath = async (m) => `/account/${(await m.getToken()).claims?.acc_id}`

describe('api(): the retry policy', () => {
  for (const [mode, status] of [['rate-limit', 429], ['status', 503]]) {
    test(`a GET answered ${status} with Retry-After is sent again after it, once`, async () => {
      const events = []
      const m = manager({ onEvent: (e) => events.push(e) })
      const path = await accountPath(m)
      sonetel.apiFault(mode, { retryAfter: 1, times: 1 })
      const started = performance.now()
      const account = await m.api('/account/{acc_id}', { query: { fields: 'email' } })
      const took = performance.now() - started
      assert.equal(account.email, USER)
      assert.deepEqual(sentTo(path).map((r) => r.faulted ?? 'served'), [mode, 'served'])
      // Waited what the server asked (a lower bound: no busy machine makes a sleep shorter).
      assert.ok(took >= 950, `sent again after ${took} ms`)
      const retry = events.filter((e) => e.type === 'api-retry')
      assert.deepEqual(retry.map(({ method, path: p, status: s, attempt }) => ({ method, path: p, status: s, attempt })),
        [{ method: 'GET', path: '/account/%7Bacc_id%7D', status, attempt: 1 }])
      assert.ok(retry[0].delayMs >= 1000)
      await m.close()
    })
  }

  test('a POST answered 429 is sent once and rejects with retryAfterMs, method, path and the side', async () => {
    const m = manager()
    await m.getAccessToken()
    sonetel.apiFault('rate-limit', { retryAfter: 2, times: 1 })
    const { err } = await rejection(m.api('/make-calls/call/call-back?x=1', { json: { call1: '+46701234567', call2: '+46812345678' } }), 'ERR_SONETEL_HTTP', {
      status: 429, retryAfterMs: 2000, method: 'POST', path: '/make-calls/call/call-back', endpoint: 'api',
    })
    assert.equal(sentTo('/make-calls/call/call-back').length, 1)
    assert.match(err.message, /^Sonetel answered HTTP 429 \(POST \/make-calls\/call\/call-back, at the API\)$/)
    assert.ok(err instanceof addon.SonetelAuthError && isSonetelAuthError(err))
    // No write is sent twice, whatever the method.
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      sonetel.apiFault('status', { status: 503, retryAfter: 0, times: 1 })
      await rejection(m.api('/account/{acc_id}', { method }), 'ERR_SONETEL_HTTP', { status: 503, retryAfterMs: 0, method })
    }
    assert.equal(sonetel.apiRequests.length, 4)
    await m.close()
  })

  test('a read is tried again at most `retries` times, and never for a wait beyond the deadline', async () => {
    const m = manager({ retries: 1 })
    const path = await accountPath(m)
    sonetel.apiFault('status', { status: 503, retryAfter: 0 })
    await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_HTTP', { status: 503, retryAfterMs: 0, endpoint: 'api' })
    assert.equal(sentTo(path).length, 2)
    sonetel.clearApiFaults()
    sonetel.reset()
    // Asked to wait 30 s with 2 s left: no retry, and the error says when to come back.
    sonetel.apiFault('rate-limit', { retryAfter: 30, times: 1 })
    const { ms } = await rejection(m.api('/account/{acc_id}', { timeoutMs: 2000 }), 'ERR_SONETEL_HTTP', { status: 429, retryAfterMs: 30_000 })
    assert.equal(sentTo(path).length, 1)
    assert.ok(ms < 30_000)
    // Other 5xx answers are not a "try later": handed back at once.
    sonetel.apiFault('status', { status: 500, times: 1 })
    await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_HTTP', { status: 500 })
    assert.equal(sentTo(path).length, 2)
    await m.close()
  })

  test('manager.fetch hands a 429 back as a Response: it never sends a request twice on its own', async () => {
    const m = manager()
    await m.getAccessToken()
    sonetel.apiFault('rate-limit', { retryAfter: 1, times: 1 })
    const res = await m.fetch('/account/{acc_id}')
    assert.equal(res.status, 429)
    assert.equal(res.headers.get('retry-after'), '1')
    assert.equal(sonetel.apiRequests.length, 1)
    await m.close()
  })
})

describe('deadlines', () => {
  test('a hanging API meets the call\'s deadline: timeoutMs per call, callTimeoutMs per manager', async () => {
    const m = manager({ callTimeoutMs: 400 })
    await m.getAccessToken()
    sonetel.apiFault('hang')
    const settles = (call) => call.then(() => 'resolved', (e) => e)
    const calls = [
      [settles(m.api('/account/{acc_id}')), 400],
      [settles(m.api('/account/{acc_id}', { timeoutMs: 200 })), 200],
      [settles(m.fetch('/account/{acc_id}', { timeoutMs: 300 })), 300],
    ]
    for (const [call, deadline] of calls) {
      const settled = await within(call, 60_000)
      assert.notEqual(settled, 'still waiting', 'the call outlived its deadline by a minute')
      assert.equal(settled.code, 'ERR_SONETEL_TIMEOUT', String(settled.message))
      assert.equal(settled.endpoint, 'api')
      assert.match(settled.message, new RegExp(`within its ${deadline} ms deadline \\(GET /account/\\{acc_id\\}, at the API\\)$`))
    }
    await m.close()
  })

  test('a hanging token endpoint meets the deadline too, and the error says the token side failed', async () => {
    const m = manager()
    sonetel.fault('hang')
    const { err } = await rejection(m.api('/account/{acc_id}', { timeoutMs: 300 }), 'ERR_SONETEL_TIMEOUT', { endpoint: 'token', method: 'GET' })
    assert.match(err.message, /getting its token from the token endpoint\)$/)
    await rejection(m.getAccessToken({ timeoutMs: 200 }), 'ERR_SONETEL_TIMEOUT')
    await m.close()
  })

  test('a token endpoint 503 during api() names the token side, not the API', async () => {
    const m = manager({ retries: 0 })
    sonetel.fault('status', { status: 503, retryAfter: 7 })
    const { err } = await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_HTTP', { status: 503, retryAfterMs: 7000, endpoint: 'token' })
    assert.match(err.message, /^Sonetel answered HTTP 503 \(GET \/account\/\{acc_id\}, getting its token from the token endpoint\)$/)
    assert.equal(sonetel.apiRequests.length, 0)
    await m.close()
  })

  test('the defaults: 10 s a request, 15 s a call', async () => {
    const m = manager()
    await m.getAccessToken()
    sonetel.apiFault('hang')
    const { ms } = await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_TIMEOUT', { endpoint: 'api', message: /10000 ms/ })
    assert.ok(ms >= 9_900, `${ms} ms`)
    await m.close()
  })

  test('a deadline option is checked like every other', async () => {
    const m = manager()
    for (const bad of [0, -1, Infinity, NaN]) {
      await rejection(m.api('/account/{acc_id}', { timeoutMs: bad }), 'ERR_INVALID_ARG_VALUE', { message: /options\.timeoutMs/ })
      await rejection(m.getAccessToken({ timeoutMs: bad }), 'ERR_INVALID_ARG_VALUE')
      await rejection(m.fetch('/account/{acc_id}', { timeoutMs: bad }), 'ERR_INVALID_ARG_VALUE', { message: /init\.timeoutMs/ })
      assert.throws(() => manager({ callTimeoutMs: bad }), { code: 'ERR_INVALID_ARG_VALUE' })
    }
    await rejection(m.api('/account/{acc_id}', { timeoutMs: '5' }), 'ERR_INVALID_ARG_TYPE')
    assert.equal(sonetel.apiRequests.length + sonetel.requests.length, 0)
    await m.close()
  })
})

describe('placeholders', () => {
  test('an unknown {placeholder} is refused, naming it, before any request', async () => {
    const m = manager()
    for (const path of ['/account/{accId}', '/account/%7Baccount%7D/user', 'https://x.invalid/{nope}']) {
      const name = /\{(\w+)\}|%7B(\w+)%7D/.exec(path).slice(1).find(Boolean)
      await rejection(m.api(path), 'ERR_INVALID_ARG_VALUE', { message: new RegExp(`\\{${name}\\}.*\\{acc_id\\}, \\{user_id\\}`) })
    }
    await rejection(m.fetch('/account/{accId}'), 'ERR_INVALID_ARG_VALUE', { message: /\{accId\}/ })
    assert.equal(sonetel.requests.length + sonetel.apiRequests.length, 0)
    assert.equal((await m.api('/account/{acc_id}/user/{user_id}').catch((e) => e)).code, 'ERR_SONETEL_API')
    await m.close()
  })
})

describe('errors in logs', () => {
  /** A closed port: connecting to it is refused. */
  async function closedPort() {
    const server = net.createServer()
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address()
    await new Promise((r) => server.close(r))
    return port
  }

  test('JSON.stringify of each code\'s error holds its name, message, properties and cause code, and no secret', async () => {
    const secretPassword = 'the-Secret-passw0rd'
    const m = manager()
    const token = await m.getToken()
    const port = await closedPort()
    const errors = {}
    const add = async (promise) => {
      const err = await promise.then(() => assert.fail('resolved'), (e) => e)
      errors[err.code] = err
    }
    await add(createAccessToken(42, 'x'))
    await add(m.api('/account/{accId}'))
    await add(createAccessToken(USER, secretPassword, { tokenUrl: sonetel.tokenUrl }))
    sonetel.fault('status', { status: 500, times: 1, retryAfter: 3 })
    await add(createAccessToken(USER, PASSWORD, { tokenUrl: sonetel.tokenUrl }))
    sonetel.fault('body', { body: '{"no":"token"}', times: 1 })
    await add(createAccessToken(USER, PASSWORD, { tokenUrl: sonetel.tokenUrl }))
    sonetel.apiFault('hang', { times: 1 })
    await add(m.api('/account/{acc_id}', { timeoutMs: 100 }))
    await add(createAccessToken(USER, secretPassword, { tokenUrl: `http://127.0.0.1:${port}/SonetelAuth/beta/oauth/token` }))
    // An API that echoes the token and the manager's own password, plain and URL-encoded.
    sonetel.failApi('DENIED', `no access for ${token.access_token} pw ${PASSWORD} ${encodeURIComponent(PASSWORD)} rt ${token.refresh_token}`)
    await add(m.api('/account/{acc_id}'))
    // An HTTP error body that echoes them, likewise.
    sonetel.apiFault('status', { status: 502, times: 1, body: `echo ${PASSWORD} ${token.refresh_token} ${token.access_token}` })
    const echoed = await m.api('/account/{acc_id}').catch((e) => e)
    assert.equal(echoed.code, 'ERR_SONETEL_HTTP')
    assertNoSecret(echoed, [PASSWORD, token.access_token, token.refresh_token])
    await add(m.getAccessToken({ signal: AbortSignal.abort(new Error('handler gave up')) }))
    const closed = manager({ password: secretPassword })
    await closed.close()
    await add(closed.getAccessToken())
    // A failure that is neither side's (closed mid-call) names the request alone.
    const closing = manager()
    await closing.getAccessToken()
    sonetel.apiFault('hang', { times: 1 })
    const sent = sonetel.apiRequests.length
    const midCall = rejection(closing.api('/account/{acc_id}'), 'ERR_SONETEL_CLOSED', { message: 'the token manager is closed (GET /account/{acc_id})', endpoint: undefined })
    for (let i = 0; i < 2000 && sonetel.apiRequests.length === sent; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    await closing.close()
    await midCall
    // A bug of ours, as a caught panic makes it (the binding's test hook).
    const { engine, call } = require('../src/face/native.js')
    const { fromText } = require('../src/face/errors.js')
    const { binding, channel } = engine()
    errors.ERR_SONETEL_INTERNAL = fromText(await call((id) => binding.panicForTesting(channel, id, 'async')))
    assert.deepEqual(Object.keys(errors).sort(), ['ABORT_ERR', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_SONETEL_API', 'ERR_SONETEL_AUTH',
      'ERR_SONETEL_CLOSED', 'ERR_SONETEL_HTTP', 'ERR_SONETEL_INTERNAL', 'ERR_SONETEL_NETWORK', 'ERR_SONETEL_RESPONSE', 'ERR_SONETEL_TIMEOUT'])
    for (const [code, err] of Object.entries(errors)) {
      const json = JSON.parse(JSON.stringify(err))
      assert.equal(json.code, code)
      assert.equal(json.message, err.message, code)
      assert.ok(json.message.length > 0, code)
      assert.equal(json.name, err.name, code)
      assert.equal(json.stack, undefined, code)
      // The same through a logger's shape: { err } in an object.
      assert.equal(JSON.parse(JSON.stringify({ err })).err.message, err.message)
      assertNoSecret(err, [secretPassword, PASSWORD, token.access_token, token.refresh_token, token.access_token.slice(-40)])
    }
    assert.deepEqual(JSON.parse(JSON.stringify(errors.ERR_SONETEL_NETWORK)).cause, { name: 'Error', code: 'ECONNREFUSED', syscall: 'connect' })
    assert.deepEqual(JSON.parse(JSON.stringify(errors.ABORT_ERR)).cause, { name: 'Error' })
    assert.deepEqual(pick(JSON.parse(JSON.stringify(errors.ERR_SONETEL_HTTP)), ['status', 'retryAfterMs']), { status: 500, retryAfterMs: 3000 })
    assert.deepEqual(pick(JSON.parse(JSON.stringify(errors.ERR_SONETEL_AUTH)), ['status', 'error', 'error_description']),
      { status: 400, error: 'invalid_grant', error_description: 'Bad credentials' })
    assert.deepEqual(pick(JSON.parse(JSON.stringify(errors.ERR_SONETEL_API)), ['status', 'apiCode', 'endpoint', 'method', 'path']),
      { status: 200, apiCode: 'DENIED', endpoint: 'api', method: 'GET', path: '/account/{acc_id}' })
    assert.deepEqual(pick(JSON.parse(JSON.stringify(errors.ERR_SONETEL_TIMEOUT)), ['endpoint', 'method', 'path']),
      { endpoint: 'api', method: 'GET', path: '/account/{acc_id}' })
    await m.close()
  })

  test('util.inspect(manager) shows its state, never a secret', async () => {
    const m = manager({ store: `file://${process.cwd()}/nonexistent-dir-${process.pid}/token` })
    const before = inspect(m)
    assert.match(before, /^TokenManager \{/)
    assert.match(before, /token: 'none'/)
    assert.match(before, /store: 'file'/)
    const token = await m.getToken()
    const shown = inspect(m, { depth: Infinity })
    assert.match(shown, /token: 'fresh'/)
    assert.match(shown, new RegExp(`expiresAt: '${new Date(token.expiresAt).toISOString()}'`))
    assert.match(shown, new RegExp(`apiUrl: '${sonetel.apiUrl}'`))
    for (const secret of [PASSWORD, USER, token.access_token, token.refresh_token]) assert.ok(!shown.includes(secret), shown)
    await m.close()
    assert.match(inspect(m), /token: 'none'.*closed: true/s)
    // Not a manager (its prototype's method on another object): shown, not thrown.
    assert.equal(inspect(Object.create(TokenManager.prototype)), 'TokenManager {}')
  })
})

describe('TokenManager.fromEnv()', () => {
  test('reads the CLI\'s variable names, own properties only; options win', async () => {
    const env = { SONETEL_USERNAME: USER, SONETEL_PASSWORD: PASSWORD, SONETEL_TOKEN_URL: sonetel.tokenUrl, SONETEL_API_URL: sonetel.apiUrl, SONETEL_STORE: '' }
    const m = TokenManager.fromEnv({ retries: 0 }, env)
    assert.equal((await m.api('/account/{acc_id}')).email, USER)
    assert.equal(sonetel.sent('password'), 1)
    await m.close()
    // Options over the environment.
    const wrong = TokenManager.fromEnv({ password: 'not-it', authFailureCooldownMs: 0 }, env)
    await rejection(wrong.getAccessToken(), 'ERR_SONETEL_AUTH', { status: 400 })
    await wrong.close()
    // What is missing is named; an inherited variable is not read; an empty one is unset.
    assert.throws(() => TokenManager.fromEnv({}, { SONETEL_USERNAME: USER }), { code: 'ERR_INVALID_ARG_VALUE', message: /SONETEL_PASSWORD is not set/ })
    assert.throws(() => TokenManager.fromEnv({}, Object.create({ SONETEL_USERNAME: USER, SONETEL_PASSWORD: PASSWORD })), { message: /SONETEL_USERNAME is not set/ })
    assert.throws(() => TokenManager.fromEnv({}, { SONETEL_USERNAME: '', SONETEL_PASSWORD: PASSWORD }), { message: /SONETEL_USERNAME is not set/ })
    assert.throws(() => TokenManager.fromEnv({ tokenUrll: 'x' }, env), { code: 'ERR_INVALID_ARG_VALUE', message: /did you mean tokenUrl/ })
    assert.throws(() => TokenManager.fromEnv({}, 'env'), { code: 'ERR_INVALID_ARG_TYPE' })
  })

  test('defaults to process.env', async () => {
    const names = ['SONETEL_USERNAME', 'SONETEL_PASSWORD', 'SONETEL_TOKEN_URL', 'SONETEL_API_URL']
    const saved = names.map((n) => process.env[n])
    Object.assign(process.env, { SONETEL_USERNAME: USER, SONETEL_PASSWORD: PASSWORD, SONETEL_TOKEN_URL: sonetel.tokenUrl, SONETEL_API_URL: sonetel.apiUrl })
    try {
      const m = TokenManager.fromEnv()
      assert.equal((await m.api('/account/{acc_id}')).email, USER)
      await m.close()
    } finally {
      names.forEach((n, i) => { if (saved[i] === undefined) delete process.env[n]; else process.env[n] = saved[i] })
    }
  })
})

function pick(object, names) {
  return Object.fromEntries(names.map((n) => [n, object[n]]))
}
