// Bad input across every export and the constructor: each rejects (or, for the
// synchronous decodeAccessToken and the constructor, throws) with the documented code,
// never crashes the process, and never shows the password or refresh token.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { addon, assertNoSecret, call, rejection, startSonetel, USER } from './helpers/common.mjs'

const { createAccessToken, refreshAccessToken, decodeAccessToken, TokenManager } = addon
const SECRET = 'S3cret-Passw0rd-do-not-leak'
const REFRESH = 'eyJhbGciOiJSUzI1NiJ9.eyJyZWZyZXNoIjoic2VjcmV0In0.cmVmcmVzaC1zZWNyZXQ'
const TYPE = 'ERR_INVALID_ARG_TYPE'
const VALUE = 'ERR_INVALID_ARG_VALUE'

let server
let tokenUrl
before(async () => {
  server = await startSonetel({ password: SECRET })
  tokenUrl = server.tokenUrl
})
after(() => server.close())

const hostile = (name) => Object.defineProperty({}, name, {
  enumerable: true,
  get() { throw new Error(`getter with ${SECRET}`) },
})
const lone = 'abc\uD800def'
const huge = 'x'.repeat(1024 * 1024)

// [label, code, () => promise]
const asyncCases = [
  ['no arguments', TYPE, () => createAccessToken()],
  ['undefined username', TYPE, () => createAccessToken(undefined, SECRET)],
  ['null username', TYPE, () => createAccessToken(null, SECRET)],
  ['number username', TYPE, () => createAccessToken(42, SECRET)],
  ['object username', TYPE, () => createAccessToken({ toString: () => USER }, SECRET)],
  ['missing password', TYPE, () => createAccessToken(USER)],
  ['number password', TYPE, () => createAccessToken(USER, 1234)],
  ['array password', TYPE, () => createAccessToken(USER, [SECRET])],
  ['empty username', VALUE, () => createAccessToken('', SECRET)],
  ['empty password', VALUE, () => createAccessToken(USER, '')],
  ['empty Buffer password', VALUE, () => createAccessToken(USER, Buffer.alloc(0))],
  ['password not UTF-8', VALUE, () => createAccessToken(USER, Buffer.from([0xff, 0xfe, 0x41]))],
  ['NUL in username', VALUE, () => createAccessToken('a\0b@example.com', SECRET)],
  ['NUL in password', VALUE, () => createAccessToken(USER, SECRET + '\0')],
  ['1 MiB username', VALUE, () => createAccessToken(huge, SECRET)],
  ['1 MiB password', VALUE, () => createAccessToken(USER, huge)],
  ['unpaired surrogate in password', VALUE, () => createAccessToken(USER, SECRET + lone)],
  ['options a string', TYPE, () => createAccessToken(USER, SECRET, 'fast')],
  ['options an array', TYPE, () => createAccessToken(USER, SECRET, [])],
  ['negative timeout', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, timeoutMs: -1 })],
  ['NaN timeout', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, timeoutMs: NaN })],
  ['huge timeout', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, timeoutMs: 1e15 })],
  ['Infinity timeout', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, timeoutMs: Infinity })],
  ['timeout as string', TYPE, () => createAccessToken(USER, SECRET, { tokenUrl, timeoutMs: '1000' })],
  ['malformed URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'https//nope' })],
  ['ftp URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'ftp://127.0.0.1/token' })],
  ['file URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'file:///etc/passwd' })],
  ['javascript URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'javascript:alert(1)' })],
  ['plain http to a remote host', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'http://example.com/token' })],
  ['URL with credentials', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: `https://u:${SECRET}@localhost/` })],
  ['1 MiB URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl: 'https://localhost/' + huge })],
  ['tokenUrl a number', TYPE, () => createAccessToken(USER, SECRET, { tokenUrl: 443 })],
  ['refresh a string', TYPE, () => createAccessToken(USER, SECRET, { tokenUrl, refresh: 'yes' })],
  ['ca not PEM', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, ca: 'not a certificate' })],
  ['ca a number', TYPE, () => createAccessToken(USER, SECRET, { tokenUrl, ca: 5 })],
  ['proxy not a URL', VALUE, () => createAccessToken(USER, SECRET, { tokenUrl, proxy: 'nowhere' })],
  ['signal not a signal', TYPE, () => createAccessToken(USER, SECRET, { tokenUrl, signal: {} })],
  ['hostile tokenUrl getter', VALUE, () => createAccessToken(USER, SECRET, hostile('tokenUrl'))],
  ['hostile timeoutMs getter', VALUE, () => createAccessToken(USER, SECRET, hostile('timeoutMs'))],
  ['hostile signal getter', VALUE, () => createAccessToken(USER, SECRET, hostile('signal'))],
  ['options a Proxy whose get throws', VALUE, () => createAccessToken(USER, SECRET, new Proxy({ tokenUrl }, { get() { throw new Error(SECRET) } }))],
  ['options a Proxy whose ownKeys throws', VALUE, () => createAccessToken(USER, SECRET, new Proxy({}, { ownKeys() { throw new Error(SECRET) } }))],
  ['refresh token missing', TYPE, () => refreshAccessToken()],
  ['refresh token a number', TYPE, () => refreshAccessToken(7)],
  ['refresh token empty', VALUE, () => refreshAccessToken('')],
  ['refresh token with NUL', VALUE, () => refreshAccessToken(REFRESH + '\0')],
  ['refresh token 1 MiB', VALUE, () => refreshAccessToken(huge)],
  ['refresh with bad URL', VALUE, () => refreshAccessToken(REFRESH, { tokenUrl: 'gopher://x' })],
  ['refresh with hostile options', VALUE, () => refreshAccessToken(REFRESH, hostile('refresh'))],
  ['getAccessToken with bad options', TYPE, () => new TokenManager({ username: USER, password: SECRET, tokenUrl }).getAccessToken(5)],
  ['authorizationHeader with bad signal', TYPE, () => new TokenManager({ username: USER, password: SECRET, tokenUrl }).authorizationHeader({ signal: 'x' })],
]

for (const [label, code, run] of asyncCases) {
  test(`rejects ${label} with ${code}`, async () => {
    const { err } = await rejection(call(run), code)
    assertNoSecret(err, [SECRET, REFRESH])
  })
}

const syncCases = [
  ['decode: no argument', TYPE, () => decodeAccessToken()],
  ['decode: a number', TYPE, () => decodeAccessToken(12)],
  ['decode: empty', VALUE, () => decodeAccessToken('')],
  ['decode: not three parts', VALUE, () => decodeAccessToken('a.b')],
  ['decode: payload not base64url', VALUE, () => decodeAccessToken('e30.%%%.x')],
  ['decode: payload not JSON', VALUE, () => decodeAccessToken(`e30.${Buffer.from('hello').toString('base64url')}.x`)],
  ['decode: payload an array', VALUE, () => decodeAccessToken(`e30.${Buffer.from('[1]').toString('base64url')}.x`)],
  ['decode: unpaired surrogate', VALUE, () => decodeAccessToken(lone)],
  ['decode: 1 MiB', VALUE, () => decodeAccessToken(huge)],
  ['constructor: no options', TYPE, () => new TokenManager()],
  ['constructor: null', TYPE, () => new TokenManager(null)],
  ['constructor: no password', TYPE, () => new TokenManager({ username: USER })],
  ['constructor: empty username', VALUE, () => new TokenManager({ username: '', password: SECRET })],
  ['constructor: negative margin', VALUE, () => new TokenManager({ username: USER, password: SECRET, refreshMarginMs: -5 })],
  ['constructor: fractional retries', VALUE, () => new TokenManager({ username: USER, password: SECRET, retries: 1.5 })],
  ['constructor: too many retries', VALUE, () => new TokenManager({ username: USER, password: SECRET, retries: 1000 })],
  ['constructor: onToken not a function', TYPE, () => new TokenManager({ username: USER, password: SECRET, onToken: 'save' })],
  ['constructor: token without access_token', VALUE, () => new TokenManager({ username: USER, password: SECRET, token: { refresh_token: REFRESH } })],
  ['constructor: token with a line break in access_token', VALUE, () => new TokenManager({ username: USER, password: SECRET, token: { access_token: 'a.b.c\r\nX-Injected: 1' } })],
  ['constructor: token a string', TYPE, () => new TokenManager({ username: USER, password: SECRET, token: REFRESH })],
  ['constructor: hostile getter', VALUE, () => new TokenManager(Object.assign(hostile('password'), { username: USER }))],
  ['constructor: plain http remote', VALUE, () => new TokenManager({ username: USER, password: SECRET, tokenUrl: 'http://10.1.2.3/token' })],
]

for (const [label, code, run] of syncCases) {
  test(`throws for ${label} with ${code}`, () => {
    let err
    try { run() } catch (e) { err = e }
    assert.ok(err instanceof TypeError, 'throws a TypeError')
    assert.equal(err.code, code, err.message)
    assertNoSecret(err, [SECRET, REFRESH])
  })
}

test('a misspelt option is an error naming the closest valid one, for every options object', async () => {
  const { err } = await rejection(createAccessToken(USER, SECRET, { tokeUrl: tokenUrl }), VALUE)
  assert.equal(err.message, 'options.tokeUrl is not an option (did you mean tokenUrl?)')
  assert.equal(server.requests.length, 0, 'nothing was sent anywhere')
  await rejection(refreshAccessToken(REFRESH, { timeoutMS: 5 }), VALUE, { message: /did you mean timeoutMs/ })
  assert.throws(() => new TokenManager({ username: USER, password: SECRET, refreshMargin: 1 }), { code: VALUE, message: /did you mean refreshMarginMs/ })
  const m = new TokenManager({ username: USER, password: SECRET, tokenUrl })
  await rejection(m.getAccessToken({ signl: AbortSignal.timeout(10) }), VALUE, { message: /did you mean signal/ })
})

test('a signal given to the TokenManager constructor is an error, not silently ignored', () => {
  assert.throws(() => new TokenManager({ username: USER, password: SECRET, tokenUrl, signal: new AbortController().signal }),
    { code: VALUE, message: /options\.signal is not an option/ })
})

test('the process is still healthy after all of that', async () => {
  const token = await createAccessToken(USER, SECRET, { tokenUrl })
  assert.equal(token.token_type, 'bearer')
})
