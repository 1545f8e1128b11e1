// The JavaScript face follows JavaScript's rules: options from any realm, errors with
// the caller's stack and a class to test with instanceof, a network cause as undici gives
// it, manager.fetch aborting as the global fetch does, callbacks that cannot take the
// process down, and close().
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import vm from 'node:vm'
import { fileURLToPath } from 'node:url'
import { after, before, beforeEach, describe, test } from 'node:test'
import { addon, rejection, startSonetel, TEST_HOOKS, USER, PASSWORD } from './helpers/common.mjs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createAccessToken, refreshAccessToken, TokenManager, SonetelAuthError, isSonetelAuthError } = addon

let server
let tokenUrl
before(async () => {
  server = await startSonetel(TEST_HOOKS)
  tokenUrl = server.tokenUrl
})
after(async () => {
  await server.close()
})
beforeEach(() => server.reset())

const manager = (opts = {}) => new TokenManager({ username: USER, password: PASSWORD, tokenUrl, apiUrl: server.apiUrl, ...opts })

/** A port nothing listens on. */
const closedPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
})

describe('options made in another realm (Jest, Vitest vmThreads, node:vm)', () => {
  // Node's vm contexts have no AbortController of their own; Jest's copies Node's in.
  const realm = vm.createContext({ AbortController, AbortSignal })
  const other = (source) => vm.runInContext(`(${source})`, realm)

  test('every entry point that takes an object accepts one made there', async () => {
    const signal = other('AbortSignal.abort()')
    const first = await createAccessToken(USER, PASSWORD, other(`{ tokenUrl: ${JSON.stringify(tokenUrl)}, timeoutMs: 5000 }`))
    assert.equal(first.token_type, 'bearer')
    await refreshAccessToken(first.refresh_token, other(`{ tokenUrl: ${JSON.stringify(tokenUrl)} }`))
    const m = new TokenManager(other(`{ username: ${JSON.stringify(USER)}, password: ${JSON.stringify(PASSWORD)},
      tokenUrl: ${JSON.stringify(tokenUrl)}, apiUrl: ${JSON.stringify(server.apiUrl)}, retries: 1 }`))
    assert.ok(await m.getAccessToken(other('{}')))
    assert.ok(await m.getAccessToken(vm.runInContext('({ signal: undefined })', realm)))
    assert.match(await m.authorizationHeader(other('{}')), /^Bearer /)
    assert.ok((await m.getToken(other('{}'))).access_token)
    const echo = await m.api('/test/echo', other('{ json: { call1: "+46701234567" }, query: { page: 2 } }'))
    assert.equal(echo.method, 'POST')
    assert.equal(echo.query, '?page=2')
    const res = await m.fetch('/test/echo', other('{ method: "PUT", headers: { "x-from": "realm" }, body: "hi" }'))
    assert.equal((await res.json()).response.method, 'PUT')
    // A signal of that realm is a signal: it aborts the call.
    const ac = other('new AbortController()')
    const pending = m.api('/test/hang', other('{}') && { signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    await rejection(pending, 'ABORT_ERR')
    assert.equal(typeof signal.aborted, 'boolean')
  })

  test('an object with a null prototype from there is plain too; a class instance from there is not', async () => {
    const bare = other(`Object.assign(Object.create(null), { tokenUrl: ${JSON.stringify(tokenUrl)} })`)
    assert.equal((await createAccessToken(USER, PASSWORD, bare)).token_type, 'bearer')
    const instance = other(`new (class Options { constructor() { this.tokenUrl = ${JSON.stringify(tokenUrl)} } })()`)
    await rejection(createAccessToken(USER, PASSWORD, instance), 'ERR_INVALID_ARG_TYPE')
    await rejection(createAccessToken(USER, PASSWORD, other('new Map()')), 'ERR_INVALID_ARG_TYPE')
  })

  test('a misspelt option from there still says what it should be', async () => {
    const { err } = await rejection(createAccessToken(USER, PASSWORD, other('{ tokeUrl: "x" }')), 'ERR_INVALID_ARG_VALUE')
    assert.equal(err.message, 'options.tokeUrl is not an option (did you mean tokenUrl?)')
  })
})

describe('errors', () => {
  test('a rejection\'s stack names the function that called, for every async entry point', async () => {
    const port = await closedPort()
    const down = `http://127.0.0.1:${port}/token`
    // Each awaits the call, as an app's handler does: a returned promise is no frame.
    async function callsCreate() { return await createAccessToken(USER, 'wrong-password', { tokenUrl }) }
    async function callsRefresh() { return await refreshAccessToken('not.a.token', { tokenUrl }) }
    async function callsGetAccessToken() { return await manager({ tokenUrl: down, retries: 0 }).getAccessToken() }
    async function callsAuthorizationHeader() { return await manager({ tokenUrl: down, retries: 0 }).authorizationHeader() }
    async function callsGetToken() { return await manager({ tokenUrl: down, retries: 0 }).getToken() }
    async function callsApi() { return await manager().api('/account/{acc_id}/nothing-here') }
    async function callsFetch() { return await manager({ apiUrl: `http://127.0.0.1:${port}` }).fetch('/x') }
    async function callsClosed() { const m = manager(); await m.close(); return await m.getAccessToken() }
    for (const fn of [callsCreate, callsRefresh, callsGetAccessToken, callsAuthorizationHeader, callsGetToken, callsApi, callsFetch, callsClosed]) {
      // The await is what makes the caller's frame an async frame of the stack.
      const err = await (async () => { try { await fn() } catch (e) { return e } })()
      assert.ok(err instanceof SonetelAuthError, `${fn.name}: ${err?.code} ${err?.message}`)
      assert.match(err.stack, new RegExp(`at (async )?${fn.name} `), `${fn.name}:\n${err.stack}`)
    }
  })

  test('the package\'s failures are instances of SonetelAuthError; argument errors are TypeErrors; aborts AbortErrors', async () => {
    const refused = await createAccessToken(USER, 'wrong-password', { tokenUrl }).catch((e) => e)
    assert.ok(refused instanceof SonetelAuthError)
    assert.ok(refused instanceof Error)
    assert.equal(refused.name, 'SonetelAuthError')
    assert.equal(refused.code, 'ERR_SONETEL_AUTH')
    assert.equal(isSonetelAuthError(refused), true)
    const bad = await createAccessToken(42, PASSWORD).catch((e) => e)
    assert.ok(bad instanceof TypeError && !(bad instanceof SonetelAuthError))
    const aborted = await createAccessToken(USER, PASSWORD, { tokenUrl, signal: AbortSignal.abort() }).catch((e) => e)
    assert.equal(aborted.name, 'AbortError')
    assert.ok(!(aborted instanceof SonetelAuthError))
  })

  test('ERR_SONETEL_NETWORK has a cause with Node\'s code: ECONNREFUSED with its port, ENOTFOUND with its host', async () => {
    const port = await closedPort()
    const refused = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: `http://127.0.0.1:${port}/token` }), 'ERR_SONETEL_NETWORK')
    assert.ok(refused.err instanceof SonetelAuthError)
    assert.equal(refused.err.cause.code, 'ECONNREFUSED')
    assert.equal(refused.err.cause.syscall, 'connect')
    assert.equal(refused.err.cause.hostname, '127.0.0.1')
    assert.equal(refused.err.cause.port, port)
    const unknown = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: 'https://no-such-host.invalid/token', timeoutMs: 10_000 }), 'ERR_SONETEL_NETWORK')
    assert.equal(unknown.err.cause.code, 'ENOTFOUND')
    assert.equal(unknown.err.cause.syscall, 'getaddrinfo')
    assert.equal(unknown.err.cause.hostname, 'no-such-host.invalid')
  })

  test('a certificate for another name is ERR_TLS_CERT_ALTNAME_INVALID, one nobody vouches for UNABLE_TO_VERIFY_LEAF_SIGNATURE, an expired one CERT_HAS_EXPIRED', async () => {
    const { selfSignedCertificate, expiredCertificate, testCertificates } = require('../testing/certs.js')
    const old = expiredCertificate()
    const expired = await startSonetel({ https: true, cert: old.cert, key: old.key })
    const chained = await startSonetel({ https: true })
    const pinned = selfSignedCertificate()
    const self = await startSonetel({ https: true, cert: pinned.cert, key: pinned.key })
    try {
      const untrusted = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: chained.tokenUrl }), 'ERR_SONETEL_NETWORK')
      assert.equal(untrusted.err.cause.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
      // Made for localhost only, asked for as 127.0.0.1.
      const wrongName = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: self.tokenUrl, ca: pinned.cert }), 'ERR_SONETEL_NETWORK')
      assert.equal(wrongName.err.cause.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
      // Valid until the second it was made, trusted otherwise.
      await new Promise((r) => setTimeout(r, 1100))
      const late = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: expired.tokenUrl.replace('127.0.0.1', 'localhost'), ca: testCertificates().ca }), 'ERR_SONETEL_NETWORK')
      assert.equal(late.err.cause.code, 'CERT_HAS_EXPIRED')
    } finally {
      await chained.close()
      await self.close()
      await expired.close()
    }
  })
})

describe('manager.fetch aborts as the global fetch does', () => {
  test('AbortSignal.timeout() rejects with its TimeoutError, an abort with the signal\'s reason', async () => {
    const m = manager()
    await m.getAccessToken()
    const timedOut = await m.fetch('/test/hang', { signal: AbortSignal.timeout(100) }).catch((e) => e)
    assert.equal(timedOut.name, 'TimeoutError')
    const ac = new AbortController()
    const reason = new Error('user left')
    const pending = m.fetch('/test/hang', { signal: ac.signal })
    setTimeout(() => ac.abort(reason), 20)
    assert.equal(await pending.catch((e) => e), reason)
  })
})

describe('callbacks', () => {
  const fixture = fileURLToPath(new URL('./fixtures/rejecting-callbacks.cjs', import.meta.url))
  test('an async onEvent or onToken that rejects is never an unhandled rejection: the process exits 0, 3 runs', async () => {
    for (let run = 1; run <= 3; run++) {
      const out = await new Promise((resolve) => {
        const p = spawn(process.execPath, [fixture], { env: { ...process.env, TOKEN_URL: tokenUrl }, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        p.stdout.on('data', (d) => { stdout += d })
        p.stderr.on('data', (d) => { stderr += d })
        p.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }))
      })
      assert.equal(out.signal, null, out.stderr)
      assert.equal(out.status, 0, `run ${run}: ${out.stderr}`)
      const result = JSON.parse(out.stdout.trim().split('\n').pop())
      assert.ok(result.events > 0, 'onEvent was called')
      assert.equal(result.onTokenFailed, 3, 'every onToken failure was reported')
    }
  })

  test('NODE_DEBUG=sonetel-auth goes through util.debuglog and reports a rejecting onEvent', async () => {
    const out = await new Promise((resolve) => {
      const p = spawn(process.execPath, [fixture], { env: { ...process.env, TOKEN_URL: tokenUrl, NODE_DEBUG: 'sonetel-auth' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      p.stderr.on('data', (d) => { stderr += d })
      p.on('close', (status) => resolve({ status, stderr }))
    })
    assert.equal(out.status, 0, out.stderr)
    assert.match(out.stderr, /^SONETEL-AUTH \d+: \{"type":"request","grant":"password","attempt":1\}$/m)
    assert.match(out.stderr, /^SONETEL-AUTH \d+: onEvent failed: listener broke$/m)
    assert.ok(!out.stderr.includes(PASSWORD))
  })
})

describe('close()', () => {
  test('releases a manager with autoRefresh and a file store: no more requests, calls reject ERR_SONETEL_CLOSED', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-close-'))
    try {
      server.accessTokenLifetime = 2
      const m = manager({ autoRefresh: true, store: `file://${dir}/token.json` })
      await m.getAccessToken()
      // A call in flight when close() comes rejects too.
      server.fault('delay', { times: 1, ms: 500 })
      m.invalidate()
      const inFlight = m.getAccessToken().catch((e) => e)
      await new Promise((r) => setTimeout(r, 50))
      const closing = m.close()
      assert.equal(m.close(), closing, 'the same promise')
      await closing
      assert.equal((await inFlight).code, 'ERR_SONETEL_CLOSED')
      const seen = server.requests.length
      // Auto-refresh would have renewed a 2 s token by now.
      await new Promise((r) => setTimeout(r, 2500))
      assert.equal(server.requests.length, seen, 'no request after close()')
      for (const later of [m.getAccessToken(), m.authorizationHeader(), m.getToken(), m.api('/account/{acc_id}'), m.fetch('/x')]) {
        const { err } = await rejection(later, 'ERR_SONETEL_CLOSED')
        assert.ok(err instanceof SonetelAuthError)
      }
      assert.equal(m.invalidate(), false)
      // The store's lock is free: another manager on the same file gets a token at once.
      const next = manager({ store: `file://${dir}/token.json`, storeTimeoutMs: 500 })
      assert.ok(await next.getAccessToken())
      await next[Symbol.asyncDispose]()
      await rejection(next.getAccessToken(), 'ERR_SONETEL_CLOSED')
    } finally {
      server.accessTokenLifetime = 86400
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('close() under way', () => {
  test('a token that arrives while close() is called is never handed out, and onToken is not called after', async () => {
    let onToken = 0
    const m = manager({ onToken: () => { onToken++ } })
    server.fault('delay', { times: 1, ms: 100 })
    const first = m.getAccessToken().catch((e) => e)
    // The token arrives while this thread is busy: its event waits in the queue.
    const until = Date.now() + 600
    while (Date.now() < until) { /* busy */ }
    await m.close()
    assert.equal((await first).code, 'ERR_SONETEL_CLOSED')
    await new Promise((r) => setTimeout(r, 50))
    await rejection(m.getAccessToken(), 'ERR_SONETEL_CLOSED')
    assert.deepEqual(m.toJSON(), { cached: false })
    assert.equal(onToken, 0)
  })

  test('close() ends the API requests under way at once: their connections close', async () => {
    const closed = []
    const hang = http.createServer((req) => { req.socket.on('close', () => closed.push(req.url)) })
    await new Promise((r) => hang.listen(0, '127.0.0.1', r))
    try {
      const m = manager({ apiUrl: `http://127.0.0.1:${hang.address().port}`, timeoutMs: 60_000 })
      await m.getAccessToken()
      const calls = [m.api('/via-api').catch((e) => e), m.fetch('/via-fetch').catch((e) => e)]
      while (closed.length === 0 && hang.connections === 0) await new Promise((r) => setTimeout(r, 5))
      await new Promise((r) => setTimeout(r, 50))
      await m.close()
      for (const err of await Promise.all(calls)) assert.equal(err.code, 'ERR_SONETEL_CLOSED')
      const started = Date.now()
      while (closed.length < 2 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10))
      assert.deepEqual(closed.sort(), ['/via-api', '/via-fetch'], 'both connections closed long before the 60 s deadline')
    } finally {
      hang.closeAllConnections()
      await new Promise((r) => hang.close(r))
    }
  })
})

describe('odd calls', () => {
  test('a method taken off a manager rejects (or throws) with ERR_INVALID_ARG_TYPE', async () => {
    const m = manager()
    const { getAccessToken, api, close, invalidate } = m
    await rejection(getAccessToken(), 'ERR_INVALID_ARG_TYPE')
    await rejection(api('/x'), 'ERR_INVALID_ARG_TYPE')
    await rejection(close.call({}), 'ERR_INVALID_ARG_TYPE')
    assert.throws(() => invalidate(), { code: 'ERR_INVALID_ARG_TYPE' })
  })

  test('manager.fetch with an init whose getter or Proxy trap throws rejects with ERR_INVALID_ARG_VALUE', async () => {
    const m = manager()
    const getter = Object.defineProperty({}, 'method', { enumerable: true, get() { throw new Error('boom') } })
    await rejection(m.fetch('/test/echo', getter), 'ERR_INVALID_ARG_VALUE')
    await rejection(m.fetch('/test/echo', new Proxy({}, { ownKeys() { throw new Error('boom') } })), 'ERR_INVALID_ARG_VALUE')
    // As the global fetch, an input object is its text.
    const res = await m.fetch({ toString: () => `${server.apiUrl}/test/echo` })
    assert.equal(res.status, 200)
  })

  test('manager.api reads nothing from Object.prototype: a polluted method, json or query changes nothing', async () => {
    const m = manager()
    await m.getAccessToken()
    Object.assign(Object.prototype, { method: 'DELETE', json: { injected: true }, query: { leaked: 'yes' } })
    let echo
    try {
      echo = await m.api('/test/echo')
    } finally {
      for (const k of ['method', 'json', 'query']) delete Object.prototype[k]
    }
    assert.deepEqual(echo, { method: 'GET', contentType: null, body: '', query: '' })
  })

  test('api() with HEAD resolves with null; an aborted signal rejects even with a cached token', async () => {
    const m = manager()
    assert.equal(await m.api('/account/{acc_id}', { method: 'HEAD' }), null)
    await rejection(m.getAccessToken({ signal: AbortSignal.abort() }), 'ABORT_ERR')
  })
})

describe('the cached-token fast path', () => {
  test('a cached token is served without a request; invalidate() and a token from the API\'s 401 retry replace it', async () => {
    const m = manager()
    const first = await m.getAccessToken()
    const again = await Promise.all(Array.from({ length: 100 }, () => m.getAccessToken()))
    assert.ok(again.every((t) => t === first))
    assert.equal(server.requests.length, 1)
    // getToken: one frozen object per token.
    const a = await m.getToken()
    assert.equal(await m.getToken(), a)
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.claims))
    // The API refuses this token: manager.api invalidates it natively, and the face's
    // cache does not hand it out again.
    server.revokeAccessTokens()
    await m.api('/account/{acc_id}')
    const second = await m.getAccessToken()
    assert.notEqual(second, first)
    m.invalidate(second)
    assert.notEqual(await m.getAccessToken(), second)
  })
})
