// Every row of the error table in DESIGN.md / README, with its properties.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, beforeEach, test } from 'node:test'
import { addon, assertNoSecret, call, rejection, startSonetel, USER, PASSWORD } from './helpers/common.mjs'

const { createAccessToken } = addon
let server
let tokenUrl
before(async () => {
  server = await startSonetel()
  tokenUrl = server.tokenUrl
})
after(() => server.close())
beforeEach(() => server.reset())

test('ERR_INVALID_ARG_TYPE: a wrong argument type rejects with a TypeError', async () => {
  const { err } = await rejection(call(createAccessToken, 42, 'x'), 'ERR_INVALID_ARG_TYPE')
  assert.match(err.message, /username must be a string, received number/)
  await rejection(call(createAccessToken), 'ERR_INVALID_ARG_TYPE')
  await rejection(call(createAccessToken, USER, PASSWORD, { timeoutMs: '100' }), 'ERR_INVALID_ARG_TYPE')
})

test('ERR_INVALID_ARG_VALUE: empty credential, bad URL, non-positive timeout, plain http off loopback', async () => {
  await rejection(call(createAccessToken, '', PASSWORD), 'ERR_INVALID_ARG_VALUE')
  await rejection(call(createAccessToken, USER, '', { tokenUrl }), 'ERR_INVALID_ARG_VALUE')
  await rejection(call(createAccessToken, USER, PASSWORD, { tokenUrl: 'not a url' }), 'ERR_INVALID_ARG_VALUE')
  await rejection(call(createAccessToken, USER, PASSWORD, { tokenUrl, timeoutMs: 0 }), 'ERR_INVALID_ARG_VALUE')
  await rejection(call(createAccessToken, USER, PASSWORD, { tokenUrl: 'http://api.sonetel.com/SonetelAuth/beta/oauth/token' }),
    'ERR_INVALID_ARG_VALUE', { message: /plain http/ })
  assert.equal(server.requests.length, 0, 'nothing was sent')
})

test('ERR_SONETEL_AUTH: wrong password, with status, error and error_description', async () => {
  const { err } = await rejection(createAccessToken(USER, 'wrong-password', { tokenUrl }), 'ERR_SONETEL_AUTH', {
    status: 400, error: 'invalid_grant', error_description: 'Bad credentials',
  })
  assertNoSecret(err, ['wrong-password'])
})

test('ERR_SONETEL_AUTH: unknown user, answered 401 as Sonetel documents it; the message names no e-mail address', async () => {
  const { err } = await rejection(createAccessToken('nobody.x+1@example.com', PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH', {
    status: 401, error: 'unauthorized', error_description: 'User with name nobody.x+1@example.com not found',
  })
  assert.equal(err.message, 'Sonetel refused the grant (401 unauthorized): User with name [e-mail] not found')
  assert.ok(!err.stack.includes('example.com'), err.stack)
  // The manager's refusal, cooled down or not, says the same.
  const m = new addon.TokenManager({ username: 'nobody.x+1@example.com', password: PASSWORD, tokenUrl, retries: 0 })
  for (let i = 0; i < 2; i++) {
    const refused = await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
    assert.match(refused.err.message, /User with name \[e-mail\] not found/)
    assert.ok(!refused.err.stack.includes('example.com'), refused.err.stack)
  }
  await m.close()
})

test('a user name that is not an e-mail address stays out of the message too, in any form the server echoes it', async () => {
  for (const user of ['+46701234567', 'zed q', 'zed@localhost']) {
    const { err } = await rejection(createAccessToken(user, PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH', { error_description: `User with name ${user} not found` })
    assert.equal(err.message, 'Sonetel refused the grant (401 unauthorized): User with name [user name] not found')
    assert.ok(!err.stack.includes(user))
  }
  for (const [user, echoed] of [['zed@example.org', 'zed%40example.org'], ['zed@example.org', 'zed&#64;example.org'], ['zed@example.org', 'zed&#x40;example.org'],
    ["o'neil@example.com", 'o%27neil%40example.com'], ['Zed@Example.org', 'zed%40example.org'], ['bob smith!(x)', 'bob+smith%21%28x%29']]) {
    server.fault('body', { status: 401, times: 1, body: JSON.stringify({ error: 'unauthorized', error_description: `User with name ${echoed} not found` }) })
    const { err } = await rejection(createAccessToken(user, PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH')
    assert.match(err.message, /^Sonetel refused the grant \(401 unauthorized\): User with name \[(e-mail|user name)\] not found$/, echoed)
  }
  // Someone else's address, encoded, is masked too.
  server.fault('body', { status: 401, times: 1, body: JSON.stringify({ error: 'unauthorized', error_description: 'Locked by admin%40example.com' }) })
  const other = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH')
  assert.equal(other.err.message, 'Sonetel refused the grant (401 unauthorized): Locked by [e-mail]')
  const m = new addon.TokenManager({ username: '+46701234567', password: PASSWORD, tokenUrl, retries: 0 })
  const { err } = await rejection(m.getAccessToken(), 'ERR_SONETEL_AUTH')
  assert.ok(!err.message.includes('+46701234567'), err.message)
  await m.close()
})

test('ERR_SONETEL_API: an e-mail address in the API\'s detail stays out of the message', async () => {
  const m = new addon.TokenManager({ username: USER, password: PASSWORD, tokenUrl, apiUrl: server.apiUrl })
  server.failApi('USER_EXISTS', 'A user with e-mail jane.doe@example.org already exists')
  const { err } = await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_API', { detail: 'A user with e-mail jane.doe@example.org already exists' })
  assert.equal(err.message, 'Sonetel\'s API answered "failed" (HTTP 200, USER_EXISTS): A user with e-mail [e-mail] already exists (GET /account/{acc_id}, at the API)')
  server.failApi('owner@example.com', 'x')
  const coded = await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_API', { apiCode: 'owner@example.com' })
  assert.equal(coded.err.message, 'Sonetel\'s API answered "failed" (HTTP 200, [e-mail]): x (GET /account/{acc_id}, at the API)')
  await m.close()
})

test('a long refresh token the server echoes is scrubbed before the description is cut', async () => {
  const long = 'eyJhbGciOiJSUzI1NiJ9.' + 'A'.repeat(1500) + '.c2ln'
  const { err } = await rejection(addon.refreshAccessToken(long, { tokenUrl }), 'ERR_SONETEL_AUTH', {
    error_description: 'Invalid refresh token: [redacted]',
  })
  assertNoSecret(err, [long.slice(0, 40), 'AAAAAAAAAA'])
})

test('a password echoed URL-encoded, HTML-escaped or JSON-escaped is scrubbed too', async () => {
  const password = 'p&ss <w0rd> "x"'
  const echoes = [encodeURIComponent(password), new URLSearchParams({ p: password }).toString().slice(2),
    password.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'), JSON.stringify(password).slice(1, -1)]
  server.fault('body', { times: 1, status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: echoes.join(' | ') }) })
  const { err } = await rejection(createAccessToken(USER, password, { tokenUrl }), 'ERR_SONETEL_AUTH')
  assert.equal(err.error_description, Array(4).fill('[redacted]').join(' | '))
  server.fault('status', { times: 1, status: 502, body: 'x'.repeat(1015) + echoes[0] })
  const page = await rejection(createAccessToken(USER, password, { tokenUrl }), 'ERR_SONETEL_HTTP')
  assert.ok(!page.err.body.includes('p%26'), 'no piece of the encoded password at the cut')
})

test('ERR_SONETEL_AUTH: a 401 unauthorized body', async () => {
  server.fault('body', { times: 1, status: 401, body: '{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}' })
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_AUTH', {
    status: 401, error: 'unauthorized', error_description: 'Full authentication is required to access this resource',
  })
})

test('ERR_SONETEL_HTTP: 5xx HTML page, with status and the first KiB of the body', async () => {
  server.fault('status', { times: 1, status: 502, body: '<html>' + 'x'.repeat(5000) + '</html>' })
  const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_HTTP', { status: 502 })
  assert.ok(err.body.startsWith('<html>xxx'))
  assert.equal(err.body.length, 1024)
})

test('ERR_SONETEL_HTTP: a 4xx that is not an OAuth error (wrong path)', async () => {
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: new URL(server.tokenUrl).origin + '/wrong/path' }), 'ERR_SONETEL_HTTP', {
    status: 404, body: /Not Found/,
  })
})

test('ERR_SONETEL_HTTP: a redirect is not followed', async () => {
  server.fault('redirect', { times: 1, status: 307, location: new URL(server.tokenUrl).origin + '/elsewhere' })
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_HTTP', { status: 307 })
  assert.equal(server.requests.length, 1, 'the credentials were not re-sent')
})

test('ERR_SONETEL_RESPONSE: a 2xx that is not a token', async () => {
  server.fault('body', { times: 1, body: '{"access_token": "abc' })
  const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl }), 'ERR_SONETEL_RESPONSE', { status: 200 })
  assert.match(err.message, /not valid JSON/)
})

test('ERR_SONETEL_TIMEOUT: the deadline passes', async () => {
  server.fault('hang', { times: 1 })
  const { err, ms } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl, timeoutMs: 300 }), 'ERR_SONETEL_TIMEOUT')
  assert.match(err.message, /300 ms/)
  assert.ok(ms >= 290, `not before the deadline (${ms} ms)`)
})

test('ERR_SONETEL_NETWORK: connection refused', async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
  const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: `http://127.0.0.1:${port}/token` }), 'ERR_SONETEL_NETWORK')
  assert.match(err.message, /could not connect to 127\.0\.0\.1/)
})

test('ABORT_ERR: an aborted signal rejects with an AbortError, before or during the request', async () => {
  const before = new AbortController()
  before.abort(new Error('changed my mind'))
  const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl, signal: before.signal }), 'ABORT_ERR', { name: 'AbortError' })
  assert.equal(err.cause.message, 'changed my mind')
  assert.equal(server.requests.length, 0)

  server.fault('hang', { times: 1 })
  const during = new AbortController()
  const pending = createAccessToken(USER, PASSWORD, { tokenUrl, signal: during.signal })
  while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
  during.abort()
  await rejection(pending, 'ABORT_ERR', { name: 'AbortError' })
  // The connection is closed, not left hanging (the test times out if it never closes).
  await server.requests[0].connectionClosed
})

test('isSonetelAuthError: true for our errors, false for look-alikes that break the declared types', async () => {
  const { isSonetelAuthError, TokenManager } = addon
  const real = [
    await createAccessToken(42, 'x').catch((e) => e),
    await createAccessToken(USER, 'wrong-password', { tokenUrl }).catch((e) => e),
    await createAccessToken(USER, PASSWORD, { tokenUrl, signal: AbortSignal.abort() }).catch((e) => e),
    await new TokenManager({ username: USER, password: PASSWORD, tokenUrl, apiUrl: 'http://127.0.0.1:9' }).api('/x').catch((e) => e),
  ]
  assert.deepEqual(real.map((e) => e.code), ['ERR_INVALID_ARG_TYPE', 'ERR_SONETEL_AUTH', 'ABORT_ERR', 'ERR_SONETEL_NETWORK'])
  for (const err of real) assert.equal(isSonetelAuthError(err), true, err.code)
  const fake = (props, base = new Error('x')) => Object.assign(base, props)
  for (const [what, value] of [
    ['an argument error that is no TypeError', fake({ code: 'ERR_INVALID_ARG_TYPE' })],
    ['an abort that is no AbortError', fake({ code: 'ABORT_ERR' })],
    ['a numeric error_description', fake({ code: 'ERR_SONETEL_AUTH', status: 400, error: 'invalid_grant', error_description: 5 })],
    ['a text retryAfterMs', fake({ code: 'ERR_SONETEL_AUTH', status: 429, error: 'slow_down', retryAfterMs: 'soon' })],
    ['a numeric apiCode', fake({ code: 'ERR_SONETEL_API', status: 200, apiCode: 7 })],
    ['a status missing', fake({ code: 'ERR_SONETEL_HTTP', body: '' })],
    ['a plain object', { code: 'ERR_SONETEL_NETWORK', message: 'x' }],
    ['the code inherited', Object.create(fake({ code: 'ERR_SONETEL_NETWORK' }))],
    ['another code', fake({ code: 'ECONNRESET' })],
  ]) assert.equal(isSonetelAuthError(value), false, what)
  for (const value of [null, undefined, 'ERR_SONETEL_AUTH', 42]) assert.equal(isSonetelAuthError(value), false)
})
