// Run by __test__/jest.test.mjs (copied into a project of its own as sonetel.test.js; named
// so that node --test does not take it for one of its own), with Jest 29's defaults
// (testEnvironment: node): every object below is made in Jest's realm, not Node's.
const path = require('node:path')
const { createAccessToken, TokenManager, SonetelAuthError, isSonetelAuthError } = require('sonetel-auth')

const testing = process.env.SONETEL_TESTING
const { startSonetelServer } = require(path.join(testing, 'sonetel-server.js'))
const { startSonetelApi } = require(path.join(testing, 'sonetel-api.js'))

const USER = 'demo@example.com'
const PASSWORD = 'demo-password'
let server
let api

beforeAll(async () => {
  server = await startSonetelServer()
  api = await startSonetelApi({ tokens: server })
})
afterAll(async () => {
  await api.close()
  await server.close()
})

test('createAccessToken with options', async () => {
  const token = await createAccessToken(USER, PASSWORD, { tokenUrl: server.url, timeoutMs: 5000 })
  expect(token).toEqual(expect.objectContaining({ token_type: 'bearer', access_token: expect.any(String) }))
})

test('new TokenManager({...}), getAccessToken({ signal }) and api(path, { json })', async () => {
  const manager = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.url, apiUrl: api.origin })
  const token = await manager.getAccessToken({ signal: AbortSignal.timeout(10_000) })
  expect(typeof token).toBe('string')
  const echo = await manager.api('/test/echo', { json: { call1: '+46701234567' }, query: { page: 1 } })
  expect(echo).toEqual({ method: 'POST', contentType: 'application/json', body: '{"call1":"+46701234567"}', query: '?page=1' })
  const account = await manager.api('/account/{acc_id}')
  expect(account.email).toBe(USER)
  await manager.close()
})

test('a refusal is a SonetelAuthError that Jest can match', async () => {
  const attempt = createAccessToken(USER, 'wrong-password', { tokenUrl: server.url })
  await expect(attempt).rejects.toBeInstanceOf(SonetelAuthError)
  await expect(createAccessToken(USER, 'wrong-password', { tokenUrl: server.url })).rejects.toMatchObject({
    code: 'ERR_SONETEL_AUTH', status: 400, error: 'invalid_grant',
  })
  const err = await createAccessToken(USER, 'wrong-password', { tokenUrl: server.url }).catch((e) => e)
  expect(isSonetelAuthError(err)).toBe(true)
})

test('fake timers do not freeze the cached token past its real expiry', async () => {
  server.accessTokenLifetime = 2
  try {
    const manager = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.url })
    const first = await manager.getAccessToken()
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] })
    try {
      // Real time passes the token's refresh point while the fake clock stands still.
      await new Promise((resolve) => jest.requireActual('node:timers').setTimeout(resolve, 1500))
      expect(await manager.getAccessToken()).not.toBe(first)
    } finally {
      jest.useRealTimers()
    }
    await manager.close()
  } finally {
    server.accessTokenLifetime = 86400
  }
})
