// sonetel-auth/testing, as a user's tests rely on it: options, accounts, lifetimes, the
// API's routes as Sonetel serves them, faults, and a clean stop.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, test } from 'node:test'
import { addon, rejection, startSonetel } from './helpers/common.mjs'

const { createAccessToken, decodeAccessToken, TokenManager } = addon
let sonetel
before(async () => { sonetel = await startSonetel({ username: 'qa@example.com', password: 'qa-password', users: { 'b@example.com': 'b-password' } }) })
after(() => sonetel.close())

test('accounts are configurable; each gets its own acc_id, user_id and user_name', async () => {
  assert.equal(sonetel.username, 'qa@example.com')
  assert.deepEqual(Object.keys(sonetel.users).sort(), ['b@example.com', 'qa@example.com'])
  const a = decodeAccessToken((await createAccessToken('qa@example.com', 'qa-password', { tokenUrl: sonetel.tokenUrl })).access_token)
  const b = decodeAccessToken((await createAccessToken('b@example.com', 'b-password', { tokenUrl: sonetel.tokenUrl })).access_token)
  assert.equal(a.user_name, 'qa@example.com')
  assert.notEqual(a.acc_id, b.acc_id)
  assert.notEqual(a.user_id, b.user_id)
  // Only the configured accounts: the default demo account is not one of them.
  await rejection(createAccessToken('demo@example.com', 'demo-password', { tokenUrl: sonetel.tokenUrl }), 'ERR_SONETEL_AUTH', { status: 401 })
  // A password changed on the fly is refused afterwards.
  sonetel.users['b@example.com'] = 'changed'
  await rejection(createAccessToken('b@example.com', 'b-password', { tokenUrl: sonetel.tokenUrl }), 'ERR_SONETEL_AUTH', { status: 400, error: 'invalid_grant' })
  sonetel.users['b@example.com'] = 'b-password'
})

test('accessTokenLifetime sets exp and expires_in', async () => {
  const short = await startSonetel({ accessTokenLifetime: 30 })
  try {
    const token = await createAccessToken(short.username, short.password, { tokenUrl: short.tokenUrl })
    const claims = decodeAccessToken(token.access_token)
    assert.equal(claims.exp - claims.iat, 30)
    assert.ok(token.expires_in <= 30 && token.expires_in >= 29)
  } finally {
    await short.close()
  }
})

test('the API as Sonetel serves it: account, users, call-back with numbers, SIP addresses and a user\'s e-mail', async () => {
  sonetel.reset()
  const m = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
  try {
    const account = await m.api('/account/{acc_id}')
    assert.equal(account.email, 'qa@example.com')
    const users = await m.api('/account/{acc_id}/user/')
    assert.equal(users[0].email, 'qa@example.com')
    for (const [call1, call2] of [['+46701234567', '+46812345678'], ['sip:desk@pbx.example.com', '46812345678'], ['qa@example.com', 'sip:bob@example.net']]) {
      const call = await m.api('/make-calls/call/call-back', { json: { call1, call2 } })
      assert.equal(typeof call.session_id, 'string')
      assert.equal(call.show_1, 'automatic')
    }
    // HTTP 200 with status "failed", as Sonetel answers.
    await rejection(m.api('/make-calls/call/call-back', { json: { call1: 'not a number', call2: '+46812345678' } }), 'ERR_SONETEL_API', { status: 200, apiCode: 'INVALID_NUMBER' })
    await rejection(m.api('/make-calls/call/call-back', { json: { call1: '+46701234567', call2: 'someone@example.com' } }), 'ERR_SONETEL_API', { apiCode: 'INVALID_NUMBER' })
    await rejection(m.api('/make-calls/call/call-back', { json: { call1: 'b@example.com', call2: '+46812345678' } }), 'ERR_SONETEL_API', { apiCode: 'USER_NOT_FOUND' })
    await rejection(m.api('/account/1'), 'ERR_SONETEL_API', { apiCode: 'ACCESS_DENIED' })
    // Our own tests' hooks are not there for users.
    await rejection(m.api('/test/echo'), 'ERR_SONETEL_API', { status: 404 })
    // (A 500, not a 503: a read answered 503 is sent again.)
    sonetel.failApi('BUSY', 'try later', 500)
    await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_API', { status: 500, apiCode: 'BUSY', detail: 'try later' })
    assert.equal(sonetel.apiRequests.at(-1).path, `/account/${decodeAccessToken(await m.getAccessToken()).acc_id}`)
    assert.equal(sonetel.sent('password'), 1)
  } finally {
    await m.close()
  }
})

test('faults and revocations', async () => {
  sonetel.reset()
  assert.equal(sonetel.fault('status', { status: 503, times: 1 }), sonetel, 'chains')
  await rejection(createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl }), 'ERR_SONETEL_HTTP', { status: 503 })
  const token = await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl })
  sonetel.revokeRefreshTokens()
  await rejection(addon.refreshAccessToken(token.refresh_token, { tokenUrl: sonetel.tokenUrl }), 'ERR_SONETEL_AUTH', { error: 'invalid_grant' })
  assert.equal(sonetel.sent('password'), 2)
  assert.deepEqual(sonetel.counts, { password: 1, refresh_token: 1, other: 0 }, 'the faulted one was not answered normally')
  assert.throws(() => sonetel.fault('explode'), { code: 'ERR_INVALID_ARG_VALUE', message: /explode is not a fault/ })
})

test('a bad fault or failApi is refused at once, and the stand-in keeps serving', async () => {
  for (const [mode, opts] of [['status', { status: 99 }], ['status', { status: 'abc' }], ['status', { status: 100 }], ['body', { body: 123 }], ['redirect', { location: 'x\ny' }],
    ['redirect', { location: 'http://x/€' }], ['body', { contentType: 'a\u0001b' }], ['rate-limit', { retryAfter: '€' }], ['hang', { mode: 'body' }], ['status', { times: 0 }], ['delay', { ms: -1 }]]) {
    assert.throws(() => sonetel.fault(mode, opts), { code: 'ERR_INVALID_ARG_VALUE' }, `${mode} ${JSON.stringify(opts)}`)
  }
  assert.throws(() => sonetel.failApi('X', 'y', 99), { code: 'ERR_INVALID_ARG_VALUE' })
  for (const [mode, opts] of [['redirect', {}], ['huge', {}], ['status', { location: 'x' }], ['delay', { bytes: 1 }], ['status', { status: 600 }], ['delay', { ms: NaN }], ['bogus', {}]]) {
    assert.throws(() => sonetel.apiFault(mode, opts), { code: 'ERR_INVALID_ARG_VALUE' }, `apiFault ${mode} ${JSON.stringify(opts)}`)
  }
  assert.throws(() => { sonetel.accessTokenLifetime = '60' }, { code: 'ERR_INVALID_ARG_VALUE' })
  assert.equal((await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl })).token_type, 'bearer')
  // A delay function that throws answers at once; a path URL cannot parse is a 400.
  sonetel.fault('delay', { times: 1, ms: () => { throw new Error('boom') } })
  assert.equal((await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl })).token_type, 'bearer')
  const m = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
  await rejection(m.api('/.//'), 'ERR_SONETEL_API', { status: 400 })
  assert.equal((await m.api('/account/{acc_id}')).email, sonetel.username)
  // An API fault whose delay function throws answers at once too; a closed connection is a network error.
  sonetel.apiFault('delay', { times: 1, ms: () => { throw new Error('boom') } })
  assert.equal((await m.api('/account/{acc_id}')).email, sonetel.username)
  sonetel.apiFault('close', { times: 1 })
  await rejection(m.api('/account/{acc_id}', { method: 'POST' }), 'ERR_SONETEL_NETWORK', { endpoint: 'api' })
  assert.equal((await m.api('/account/{acc_id}')).email, sonetel.username)
  await m.close()
})

test('rotateRefreshTokens, refuseApiTokens and a delay until a promise settles', async () => {
  sonetel.reset()
  const opts = { tokenUrl: sonetel.tokenUrl }
  const first = await createAccessToken(sonetel.username, sonetel.password, opts)
  sonetel.rotateRefreshTokens = true
  try {
    const second = await addon.refreshAccessToken(first.refresh_token, { ...opts, refresh: false })
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token, 'a new refresh token, even unasked')
    await rejection(addon.refreshAccessToken(first.refresh_token, opts), 'ERR_SONETEL_AUTH', { error: 'invalid_grant' })
    assert.equal((await addon.refreshAccessToken(second.refresh_token, opts)).token_type, 'bearer')
  } finally {
    sonetel.rotateRefreshTokens = false
  }
  const m = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
  sonetel.refuseApiTokens = true
  await rejection(m.api('/account/{acc_id}'), 'ERR_SONETEL_HTTP', { status: 401 })
  sonetel.refuseApiTokens = false
  assert.equal((await m.api('/account/{acc_id}')).email, sonetel.username)
  await m.close()
  let open
  sonetel.fault('delay', { times: 1, until: new Promise((resolve) => { open = resolve }) })
  let settled = false
  const asked = sonetel.requests.length
  const held = createAccessToken(sonetel.username, sonetel.password, opts).then((t) => { settled = true; return t })
  while (sonetel.requests.length === asked) await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(settled, false, 'held until the promise settles')
  open()
  assert.equal((await held).token_type, 'bearer')
  for (const bad of [() => { sonetel.rotateRefreshTokens = 'yes' }, () => { sonetel.refuseApiTokens = 1 }, () => sonetel.fault('delay', { until: 5 })]) {
    assert.throws(bad, { code: 'ERR_INVALID_ARG_VALUE' })
  }
  await assert.rejects(startSonetel({ rotateRefreshTokens: 'yes' }), { code: 'ERR_INVALID_ARG_VALUE', message: /rotateRefreshTokens/ })
})

test('close() clears a delay fault\'s timers: the process can exit', async () => {
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync(process.execPath, ['-e', `
    const { startSonetel } = require('sonetel-auth/testing')
    const { createAccessToken } = require('sonetel-auth')
    startSonetel().then(async (s) => {
      s.fault('delay', { ms: 60000 })
      const p = createAccessToken(s.username, s.password, { tokenUrl: s.tokenUrl }).catch((e) => e.code)
      while (s.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
      await s.close()
      console.log(await p)
    })
  `], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.signal, null, 'the process exited by itself')
  assert.equal(r.stdout.trim(), 'ERR_SONETEL_NETWORK')
})

test('bad options are TypeErrors naming the option', async () => {
  for (const [options, pattern] of [[{ pasword: 'x' }, /pasword is not an option/], [{ accessTokenLifetime: 0 }, /accessTokenLifetime/],
    [{ accessTokenLifetime: 0.5 }, /whole number/], [{ username: 'a@example.com', password: 'p1', users: { 'a@example.com': 'p2' } }, /another password/],
    [{ https: 'yes' }, /https/], [{ users: [] }, /users/],
    [{ username: '' }, /username/], [{ users: { a: 1 } }, /users/], [{ cert: 'x', key: 'y' }, /https/], [null, /options must be an object/]]) {
    await assert.rejects(startSonetel(options), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE' && pattern.test(e.message))
  }
})

test('https: true serves both over TLS with a CA to trust', { skip: !fs.existsSync('/usr/bin/openssl') && 'no openssl command' }, async () => {
  const tls = await startSonetel({ https: true })
  try {
    assert.match(tls.tokenUrl, /^https:/)
    assert.match(tls.apiUrl, /^https:/)
    const m = new TokenManager({ username: tls.username, password: tls.password, tokenUrl: tls.tokenUrl, apiUrl: tls.apiUrl, ca: tls.ca })
    assert.equal((await m.api('/account/{acc_id}')).email, tls.username)
    await m.close()
  } finally {
    await tls.close()
  }
})

test('close() ends open connections and requests in flight, and can be called twice', async () => {
  const s = await startSonetel()
  s.fault('hang')
  const pending = createAccessToken(s.username, s.password, { tokenUrl: s.tokenUrl, timeoutMs: 60_000 })
  while (s.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
  await Promise.all([s.close(), s.close()])
  await rejection(pending, 'ERR_SONETEL_NETWORK')
})

test('the stand-ins read a request body up to 1 MiB: a larger one is answered 413 and not kept', async () => {
  sonetel.reset()
  const big = 'x'.repeat(3 * 1024 * 1024)
  for (const url of [sonetel.tokenUrl, `${sonetel.apiUrl}/make-calls/call/call-back`]) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big }).catch((e) => e)
    // The connection is closed after the answer: a client may see the 413 or the close.
    if (!(res instanceof Error)) assert.equal(res.status, 413, url)
  }
  assert.equal(sonetel.requests.length + sonetel.apiRequests.length, 0)
  // A body at the cap is read and kept.
  const res = await fetch(sonetel.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&pad=' + 'y'.repeat(1024 * 1024 - 24) })
  assert.equal(res.status, 401)
  assert.equal(sonetel.requests.length, 1)
})
