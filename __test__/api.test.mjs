// Calling Sonetel's API with the managed token: manager.fetch (a standard Response, the
// token kept on the API origin, one retry after a 401) and manager.api (Sonetel's
// envelope, ERR_SONETEL_API for {"status":"failed"} whatever the HTTP status).
// Against the local token server and the local API stand-in beside it.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, beforeEach, describe, test } from 'node:test'
import { createRequire } from 'node:module'
import { addon, assertNoSecret, rejection, startSonetelServer, USER, PASSWORD } from './helpers/common.mjs'

const require = createRequire(import.meta.url)
const { startSonetelApi } = require('../testing/sonetel-api.js')
const { TokenManager, decodeAccessToken } = addon

let tokens
let api
let other // another origin, which must never see the token
const seenByOther = []
before(async () => {
  tokens = await startSonetelServer()
  api = await startSonetelApi({ tokens })
  other = http.createServer((req, res) => {
    seenByOther.push({ url: req.url, authorization: req.headers.authorization })
    res.end('{}')
  })
  await new Promise((r) => other.listen(0, '127.0.0.1', r))
})
after(async () => {
  await api.close()
  await tokens.close()
  other.closeAllConnections()
  await new Promise((r) => other.close(r))
})
beforeEach(() => {
  tokens.reset()
  api.reset()
  seenByOther.length = 0
})

const otherOrigin = () => `http://127.0.0.1:${other.address().port}`
const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl: tokens.url, apiUrl: api.origin, retryDelayMs: 1, ...opts })

describe('manager.fetch', () => {
  test('adds the bearer token and gives a standard Response', async () => {
    const m = manager()
    const { claims, access_token: token } = await m.getToken()
    const res = await m.fetch(`/account/${claims.acc_id}`)
    assert.ok(res instanceof Response)
    assert.equal(res.status, 200)
    assert.equal(res.ok, true)
    assert.match(res.headers.get('content-type'), /application\/json/)
    assert.equal(res.url, `${api.origin}/account/${claims.acc_id}`)
    const body = await res.json()
    assert.equal(body.status, 'success')
    assert.equal(body.response.account_id, claims.acc_id)
    assert.equal(api.requests[0].headers.authorization, `Bearer ${token}`)
  })

  test('a revoked token: 20 concurrent calls that get 401 make one new token request and all succeed', async () => {
    const m = manager()
    const { claims } = await m.getToken()
    tokens.reset()
    tokens.revokeAccessTokens()
    const answers = await Promise.all(Array.from({ length: 20 }, () => m.fetch(`/account/${claims.acc_id}`)))
    assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200))
    assert.equal(tokens.requests.length, 1, 'one new token request')
    assert.equal(api.requests.filter((r) => r.headers.authorization).length, 40, '20 refused, 20 retried')
  })

  test('the token never goes to another origin: absolute URLs, user info, protocol-relative paths', async () => {
    const m = manager()
    for (const input of [`${otherOrigin()}/steal`, new URL('/steal', otherOrigin()), `//127.0.0.1:${other.address().port}/steal`,
      api.origin.replace('http://', 'http://user:pass@') + '/account/1', new Request(`${otherOrigin()}/steal`)]) {
      await rejection(m.fetch(input), 'ERR_INVALID_ARG_VALUE')
    }
    assert.deepEqual(seenByOther, [])
    assert.equal(api.requests.length, 0)
  })

  test('a redirect to another origin is not followed; one on the API origin is, with the token', async () => {
    const m = manager()
    const { claims } = await m.getToken()
    const away = await m.fetch(`/test/redirect?to=${encodeURIComponent(`${otherOrigin()}/steal`)}`)
    assert.equal(away.status, 302)
    assert.equal(away.headers.get('location'), `${otherOrigin()}/steal`)
    assert.deepEqual(seenByOther, [])
    const home = await m.fetch(`/test/redirect?to=${encodeURIComponent(`/account/${claims.acc_id}`)}`)
    assert.equal(home.status, 200)
    assert.equal(home.redirected, true)
    assert.equal(api.requests.at(-1).headers.authorization?.startsWith('Bearer '), true)
    const manual = await m.fetch(`/test/redirect?to=${encodeURIComponent(`/account/${claims.acc_id}`)}`, { redirect: 'manual' })
    assert.equal(manual.status, 302)
  })

  test('a stream body is not sent again after a 401; the next call has a new token', async () => {
    const m = manager()
    await m.getAccessToken()
    tokens.reset()
    tokens.revokeAccessTokens()
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"call1":"+46701234567","call2":"+46812345678"}')); c.close() } })
    const res = await m.fetch('/make-calls/call/call-back', { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } })
    assert.equal(res.status, 401)
    assert.equal(api.requests.length, 1, 'not replayed')
    const again = await m.fetch('/test/echo', { method: 'POST', body: 'x' })
    assert.equal(again.status, 200)
    assert.equal(tokens.requests.length, 1)
  })

  test('bodies as fetch takes them: string, bytes, URLSearchParams, FormData, Blob', async () => {
    const m = manager()
    const echo = async (init) => (await (await m.fetch('/test/echo', { method: 'POST', ...init })).json()).response
    assert.deepEqual(await echo({ body: 'plain' }), { method: 'POST', contentType: 'text/plain;charset=UTF-8', body: 'plain', query: '' })
    assert.equal((await echo({ body: new TextEncoder().encode('bytes') })).body, 'bytes')
    const form = await echo({ body: new URLSearchParams({ a: '1', b: 'x y' }) })
    assert.equal(form.contentType, 'application/x-www-form-urlencoded;charset=UTF-8')
    assert.equal(form.body, 'a=1&b=x+y')
    const fd = new FormData()
    fd.append('call1', '+46701234567')
    const multipart = await echo({ body: fd })
    assert.match(multipart.contentType, /^multipart\/form-data; boundary=/)
    assert.match(multipart.body, /name="call1"\r\n\r\n\+46701234567/)
    assert.equal((await echo({ body: new Blob(['blob']) })).body, 'blob')
    assert.equal((await (await m.fetch('/test/echo?x=1')).json()).response.query, '?x=1')
  })

  test('bad arguments reject with ERR_INVALID_ARG_VALUE, never throw', async () => {
    const m = manager()
    await rejection(m.fetch(42), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.fetch('/x', { method: 'BAD METHOD' }), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.fetch('/x', { headers: { 'bad header': 'x' } }), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.fetch('/x', 'init'), 'ERR_INVALID_ARG_VALUE')
  })

  test('apiUrl is checked like tokenUrl', () => {
    assert.throws(() => manager({ apiUrl: 'http://example.com' }), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => manager({ apiUrl: 'ftp://127.0.0.1' }), { code: 'ERR_INVALID_ARG_VALUE' })
  })
})

describe('manager.api', () => {
  test('resolves with the response member, {acc_id} filled from the token', async () => {
    const m = manager()
    const account = await m.api('/account/{acc_id}')
    const { claims } = await m.getToken()
    assert.equal(account.account_id, claims.acc_id)
    assert.equal(account.email, USER)
    assert.equal(api.requests[0].path, `/account/${claims.acc_id}`)
    assert.deepEqual(await m.api('/account/{acc_id}/phonenumbersubscription'), [{ phone_number: '+46850000000', status: 'active' }])
  })

  test('a call-back request answered 202 resolves with its session_id', async () => {
    const result = await manager().api('/make-calls/call/call-back', { json: { call1: '+46701234567', call2: '+46812345678' } })
    assert.match(result.session_id, /^[0-9a-f-]{36}$/)
    assert.equal(api.requests[0].method, 'POST')
    assert.equal(api.requests[0].headers['content-type'], 'application/json')
  })

  test('{"status":"failed"} with HTTP 200 rejects with ERR_SONETEL_API, status, apiCode and detail', async () => {
    const m = manager()
    const token = await m.getAccessToken()
    const { err } = await rejection(m.api('/make-calls/call/call-back', { json: { call1: 'nope', call2: '+46812345678' } }), 'ERR_SONETEL_API', {
      status: 200, apiCode: 'INVALID_NUMBER', detail: 'call1 and call2 must be phone numbers in E.164 form',
    })
    assertNoSecret(err, [token, PASSWORD])
    api.failWith('ACCOUNT_SUSPENDED', 'The account is suspended', 403)
    await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_API', { status: 403, apiCode: 'ACCOUNT_SUSPENDED' })
  })

  test('other non-2xx answers are ERR_SONETEL_HTTP; a token refused twice is a 401', async () => {
    const m = manager()
    await m.getAccessToken()
    tokens.fault('body', { body: JSON.stringify({ access_token: 'not-one-the-api-knows', token_type: 'bearer', expires_in: 3600 }) })
    tokens.revokeAccessTokens()
    await rejection(m.api('/test/echo'), 'ERR_SONETEL_HTTP', { status: 401 })
    tokens.clearFaults()
    assert.equal(api.requests.length, 2, 'one retry, no more')
  })

  test('query, method and unknown options', async () => {
    const m = manager()
    const echo = await m.api('/test/echo', { query: { page: 2, tags: ['a', 'b'], on: true }, method: 'delete' })
    assert.equal(echo.method, 'DELETE')
    assert.equal(echo.query, '?page=2&tags=a&tags=b&on=true')
    await rejection(m.api('/test/echo', { jsno: {} }), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.api('/test/echo', { query: { bad: {} } }), 'ERR_INVALID_ARG_TYPE')
    await rejection(m.api(`${otherOrigin()}/steal`), 'ERR_INVALID_ARG_VALUE')
    assert.deepEqual(seenByOther, [])
  })

  test('abort and timeout settle with our codes, with no token in the error', async () => {
    const m = manager({ timeoutMs: 300 })
    const token = await m.getAccessToken()
    const ac = new AbortController()
    const pending = m.api('/test/hang', { signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    await rejection(pending, 'ABORT_ERR', { name: 'AbortError' })
    const { err } = await rejection(m.api('/test/hang'), 'ERR_SONETEL_TIMEOUT')
    assertNoSecret(err, [token])
    const viaFetch = await rejection(m.fetch('/test/hang', { signal: AbortSignal.abort() }), 'ABORT_ERR')
    assertNoSecret(viaFetch.err, [token])
    await rejection(m.fetch('/test/hang'), 'ERR_SONETEL_TIMEOUT')
  })

  test('the claims filled in are the token\'s', async () => {
    const m = manager()
    const account = await m.api('/account/{acc_id}')
    assert.equal(account.account_id, decodeAccessToken(await m.getAccessToken()).acc_id)
  })
})
