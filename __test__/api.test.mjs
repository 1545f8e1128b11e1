// Calling Sonetel's API with the managed token: manager.fetch (a standard Response, the
// token kept on the API origin, one retry after a 401) and manager.api (Sonetel's
// envelope, ERR_SONETEL_API for {"status":"failed"} whatever the HTTP status).
// Against the local token server and the local API stand-in beside it.
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { inspect } from 'node:util'
import { after, before, beforeEach, describe, test } from 'node:test'
import { addon, assertNoSecret, rejection, startSonetel, TEST_HOOKS, USER, PASSWORD } from './helpers/common.mjs'

const { TokenManager, decodeAccessToken } = addon

let tokens
let other // another origin, which must never see the token
const seenByOther = []
before(async () => {
  tokens = await startSonetel(TEST_HOOKS)
  other = http.createServer((req, res) => {
    seenByOther.push({ url: req.url, authorization: req.headers.authorization })
    res.end('{}')
  })
  await new Promise((r) => other.listen(0, '127.0.0.1', r))
})
after(async () => {
  await tokens.close()
  other.closeAllConnections()
  await new Promise((r) => other.close(r))
})
beforeEach(() => {
  tokens.reset()
  seenByOther.length = 0
})

const otherOrigin = () => `http://127.0.0.1:${other.address().port}`
const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl: tokens.tokenUrl, apiUrl: tokens.apiUrl, retryDelayMs: 1, ...opts })

describe('manager.fetch', () => {
  test('adds the bearer token and gives a standard Response', async () => {
    const m = manager()
    const { claims, access_token: token } = await m.getToken()
    const res = await m.fetch(`/account/${claims.acc_id}`)
    assert.ok(res instanceof Response)
    assert.equal(res.status, 200)
    assert.equal(res.ok, true)
    assert.match(res.headers.get('content-type'), /application\/json/)
    assert.equal(res.url, `${tokens.apiUrl}/account/${claims.acc_id}`)
    const body = await res.json()
    assert.equal(body.status, 'success')
    assert.equal(body.response.account_id, claims.acc_id)
    assert.equal(tokens.apiRequests[0].headers.authorization, `Bearer ${token}`)
  })

  test('a revoked token: 20 concurrent calls that get 401 make one new token request and all succeed', async () => {
    const m = manager()
    const { claims, access_token: revoked } = await m.getToken()
    tokens.reset()
    tokens.revokeAccessTokens()
    const answers = await Promise.all(Array.from({ length: 20 }, () => m.fetch(`/account/${claims.acc_id}`)))
    assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200))
    assert.equal(tokens.requests.length, 1, 'one new token request')
    // Each call sent the revoked token at most once (on a busy machine the first refusal
    // can come back before the last calls start, and those send the new one at once).
    const sent = tokens.apiRequests.map((r) => r.headers.authorization)
    const stale = sent.filter((a) => a === `Bearer ${revoked}`).length
    assert.ok(stale >= 1 && stale <= 20, `${stale} requests with the revoked token`)
    assert.equal(sent.length, 20 + stale, 'each refused request retried once, each other sent once')
  })

  test('the token never goes to another origin: absolute URLs, user info, protocol-relative paths', async () => {
    const m = manager()
    for (const input of [`${otherOrigin()}/steal`, new URL('/steal', otherOrigin()), `//127.0.0.1:${other.address().port}/steal`,
      tokens.apiUrl.replace('http://', 'http://user:pass@') + '/account/1', new Request(`${otherOrigin()}/steal`)]) {
      await rejection(m.fetch(input), 'ERR_INVALID_ARG_VALUE')
    }
    assert.deepEqual(seenByOther, [])
    assert.equal(tokens.apiRequests.length, 0)
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
    assert.equal(tokens.apiRequests.at(-1).headers.authorization?.startsWith('Bearer '), true)
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
    assert.equal(tokens.apiRequests.length, 1, 'not replayed')
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

  test('bad arguments reject, never throw, and never quote what they refuse', async () => {
    const m = manager()
    await rejection(m.fetch(42), 'ERR_INVALID_ARG_TYPE')
    await rejection(m.fetch('/x', 'init'), 'ERR_INVALID_ARG_TYPE')
    await rejection(m.fetch('/x', { method: 'BAD METHOD' }), 'ERR_INVALID_ARG_VALUE', { message: /init\.method/ })
    await rejection(m.fetch('/x', { headers: { 'bad header': 'x' } }), 'ERR_INVALID_ARG_VALUE', { message: /init\.headers/ })
    await rejection(m.fetch(`blob:${tokens.apiUrl}/x`), 'ERR_INVALID_ARG_VALUE')
    const secret = 'S3cret-in-a-URL'
    for (const [input, init] of [[tokens.apiUrl.replace('http://', `http://user:${secret}@`) + '/x'], ['/x', { headers: { authorization: `Bearer ${secret}\nX: 1` } }],
      ['/x', { method: `${secret} ` }], [`http://[${secret}`]]) {
      const { err } = await rejection(m.fetch(input, init), 'ERR_INVALID_ARG_VALUE')
      assertNoSecret(err, [secret])
    }
    assert.equal(tokens.apiRequests.length, 0)
  })

  test('a stream body is read no further than the size limit, and no longer than the signal allows', async () => {
    const m = manager()
    await m.getAccessToken()
    let pulled = 0
    const endless = new ReadableStream({ pull(c) { pulled++; c.enqueue(new Uint8Array(1024 * 1024)) } })
    const { err } = await rejection(m.fetch('/test/echo', { method: 'POST', body: endless, duplex: 'half' }), 'ERR_INVALID_ARG_VALUE')
    assert.match(err.message, /larger than 16777216 bytes/)
    assert.ok(pulled < 40, `read ${pulled} MiB of an endless body`)
    const stuck = new ReadableStream({ pull() { return new Promise(() => {}) } })
    const ac = new AbortController()
    const pending = m.fetch('/test/echo', { method: 'POST', body: stuck, duplex: 'half', signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    // As the global fetch: the rejection is the signal's reason.
    assert.equal(await pending.catch((e) => e), ac.signal.reason)
    assert.equal(tokens.apiRequests.length, 0)
  })

  test('odd answers are a Response as Node\'s fetch gives them, or ERR_SONETEL_RESPONSE; never ERR_SONETEL_INTERNAL', async () => {
    const raw = net.createServer((socket) => socket.once('data', (d) => {
      const path = d.toString('latin1').split(' ')[1]
      const head = {
        '/latin': 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\nhi',
        '/s999': 'HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n',
        '/fragment': 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
        '/loop': 'HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n',
        '/s300': 'HTTP/1.1 300 Multiple Choices\r\nContent-Length: 0\r\n\r\n',
      }[path]
      socket.end(Buffer.from(head.replace('\r\n', '\r\nConnection: close\r\n'), 'latin1'))
    }))
    await new Promise((r) => raw.listen(0, '127.0.0.1', r))
    try {
      const m = manager({ apiUrl: `http://127.0.0.1:${raw.address().port}` })
      const latin = await m.fetch('/latin')
      assert.equal(latin.headers.get('x-name'), 'caf\u00e9', 'header bytes read as Latin-1')
      assert.equal(await latin.text(), 'hi')
      await rejection(m.fetch('/s999'), 'ERR_SONETEL_RESPONSE', { status: 999 })
      assert.equal((await m.fetch('/fragment#part')).url, `http://127.0.0.1:${raw.address().port}/fragment`)
      await rejection(m.fetch('/loop'), 'ERR_SONETEL_RESPONSE', { message: /redirect/ })
      await rejection(m.api('/loop'), 'ERR_SONETEL_RESPONSE', { message: /redirect/ })
      assert.equal((await m.fetch('/s300', { redirect: 'error' })).status, 300, 'only a redirect status is a redirect')
      await rejection(m.fetch('/loop', { redirect: 'error' }), 'ERR_SONETEL_HTTP', { status: 302 })
    } finally {
      await new Promise((r) => raw.close(r))
    }
  })

  test('a Host header of the caller\'s is not sent: the request goes to the API origin', async () => {
    const m = manager()
    await m.fetch('/test/echo', { headers: { host: 'evil.example' } })
    assert.equal(tokens.apiRequests[0].headers.host, new URL(tokens.apiUrl).host)
  })

  test('apiUrl is checked like tokenUrl, and is an origin', () => {
    assert.throws(() => manager({ apiUrl: 'http://example.com' }), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => manager({ apiUrl: 'ftp://127.0.0.1' }), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => manager({ apiUrl: `${tokens.apiUrl}/v2` }), { code: 'ERR_INVALID_ARG_VALUE', message: /origin/ })
    assert.throws(() => manager({ apiUrl: `${tokens.apiUrl}/?x=1` }), { code: 'ERR_INVALID_ARG_VALUE' })
  })
})

describe('manager.api', () => {
  test('resolves with the response member, {acc_id} filled from the token', async () => {
    const m = manager()
    const account = await m.api('/account/{acc_id}')
    const { claims } = await m.getToken()
    assert.equal(account.account_id, claims.acc_id)
    assert.equal(account.email, USER)
    assert.equal(tokens.apiRequests[0].path, `/account/${claims.acc_id}`)
    assert.deepEqual(await m.api('/account/{acc_id}/phonenumbersubscription'), [{ phone_number: '+46850000000', status: 'active' }])
  })

  test('a call-back request answered 202 resolves with its session_id', async () => {
    const result = await manager().api('/make-calls/call/call-back', { json: { call1: '+46701234567', call2: '+46812345678' } })
    assert.match(result.session_id, /^[0-9a-f-]{36}$/)
    assert.equal(tokens.apiRequests[0].method, 'POST')
    assert.equal(tokens.apiRequests[0].headers['content-type'], 'application/json')
  })

  test('{"status":"failed"} with HTTP 200 rejects with ERR_SONETEL_API, status, apiCode and detail', async () => {
    const m = manager()
    const token = await m.getAccessToken()
    const { err } = await rejection(m.api('/make-calls/call/call-back', { json: { call1: 'nope', call2: '+46812345678' } }), 'ERR_SONETEL_API', {
      status: 200, apiCode: 'INVALID_NUMBER', detail: "call1 and call2 must be phone numbers in E.164 form or SIP addresses (call1 may be a user's e-mail)",
    })
    assertNoSecret(err, [token, PASSWORD])
    tokens.failApi('ACCOUNT_SUSPENDED', 'The account is suspended', 403)
    await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_API', { status: 403, apiCode: 'ACCOUNT_SUSPENDED' })
  })

  test('other non-2xx answers are ERR_SONETEL_HTTP; a token refused twice is a 401', async () => {
    const m = manager()
    await m.getAccessToken()
    tokens.fault('body', { body: JSON.stringify({ access_token: 'not-one-the-api-knows', token_type: 'bearer', expires_in: 3600 }) })
    tokens.revokeAccessTokens()
    await rejection(m.api('/test/echo'), 'ERR_SONETEL_HTTP', { status: 401 })
    tokens.clearFaults()
    assert.equal(tokens.apiRequests.length, 2, 'one retry, no more')
  })

  test('query, method and unknown options', async () => {
    const m = manager()
    const echo = await m.api('/test/echo', { query: { page: 2, tags: ['a', 'b'], on: true }, method: 'delete' })
    assert.equal(echo.method, 'DELETE')
    assert.equal(echo.query, '?page=2&tags=a&tags=b&on=true')
    assert.equal((await m.api('/test/echo', { query: {} })).query, '', 'no bare ?')
    await rejection(m.api('/test/echo', { query: { n: Infinity } }), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.api('/test/echo', { method: 'CONNECT' }), 'ERR_INVALID_ARG_VALUE')
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
    const viaFetch = await m.fetch('/test/hang', { signal: AbortSignal.abort() }).catch((e) => e)
    assert.equal(viaFetch.name, 'AbortError', 'the signal\'s reason, as the global fetch rejects')
    assertNoSecret(viaFetch, [token])
    await rejection(m.fetch('/test/hang'), 'ERR_SONETEL_TIMEOUT')
  })

  test('an API that echoes the token gets it redacted from every error', async () => {
    const echo = http.createServer((req, res) => {
      const token = req.headers.authorization.slice('Bearer '.length)
      if (req.url === '/500') { res.writeHead(500); return res.end(`debug: token=${token}`) }
      res.end(JSON.stringify({ status: 'failed', response: { code: `BAD ${token}`, detail: `token ${token}` } }))
    })
    await new Promise((r) => echo.listen(0, '127.0.0.1', r))
    try {
      const m = manager({ apiUrl: `http://127.0.0.1:${echo.address().port}` })
      const token = await m.getAccessToken()
      const http500 = await rejection(m.api('/500'), 'ERR_SONETEL_HTTP', { status: 500, body: 'debug: token=[redacted]' })
      const failed = await rejection(m.api('/failed'), 'ERR_SONETEL_API', { apiCode: 'BAD [redacted]', detail: 'token [redacted]' })
      for (const { err } of [http500, failed]) {
        assertNoSecret(err, [token, token.split('.')[2]])
        assert.ok(!inspect(err).includes(token.split('.')[2]))
      }
    } finally {
      echo.closeAllConnections()
      await new Promise((r) => echo.close(r))
    }
  })

  test('the claims filled in are the token\'s', async () => {
    const m = manager()
    const account = await m.api('/account/{acc_id}')
    assert.equal(account.account_id, decodeAccessToken(await m.getAccessToken()).acc_id)
  })
})
