// Run by __test__/jest.test.mjs (copied into a project of its own as sonetel.test.js; named
// so that node --test does not take it for one of its own), with Jest 29's defaults
// (testEnvironment: node): every object below is made in Jest's realm, not Node's.
const { createAccessToken, TokenManager, SonetelAuthError, isSonetelAuthError } = require('sonetel-auth')
const { startSonetel } = require('sonetel-auth/testing')

const USER = 'demo@example.com'
const PASSWORD = 'demo-password'
let server

beforeAll(async () => {
  server = await startSonetel()
})
afterAll(() => server.close())

test('createAccessToken with options', async () => {
  const token = await createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl, timeoutMs: 5000 })
  expect(token).toEqual(expect.objectContaining({ token_type: 'bearer', access_token: expect.any(String) }))
})

test('new TokenManager({...}), getAccessToken({ signal }) and api(path, { json })', async () => {
  const manager = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, apiUrl: server.apiUrl })
  const token = await manager.getAccessToken({ signal: AbortSignal.timeout(10_000) })
  expect(typeof token).toBe('string')
  const call = await manager.api('/make-calls/call/call-back', { json: { call1: '+46701234567', call2: 'sip:desk@example.com' }, query: { page: 1 } })
  expect(call).toEqual(expect.objectContaining({ call1: '+46701234567', call2: 'sip:desk@example.com', show_1: 'automatic' }))
  const sent = server.apiRequests.at(-1)
  expect(sent).toEqual(expect.objectContaining({ method: 'POST', path: '/make-calls/call/call-back?page=1', body: '{"call1":"+46701234567","call2":"sip:desk@example.com"}' }))
  expect(sent.headers['content-type']).toBe('application/json')
  const account = await manager.api('/account/{acc_id}')
  expect(account.email).toBe(USER)
  await manager.close()
})

test('a refusal is a SonetelAuthError that Jest can match', async () => {
  const attempt = createAccessToken(USER, 'wrong-password', { tokenUrl: server.tokenUrl })
  await expect(attempt).rejects.toBeInstanceOf(SonetelAuthError)
  await expect(createAccessToken(USER, 'wrong-password', { tokenUrl: server.tokenUrl })).rejects.toMatchObject({
    code: 'ERR_SONETEL_AUTH', status: 400, error: 'invalid_grant',
  })
  const err = await createAccessToken(USER, 'wrong-password', { tokenUrl: server.tokenUrl }).catch((e) => e)
  expect(isSonetelAuthError(err)).toBe(true)
})

test('fake timers do not freeze the cached token past its real expiry', async () => {
  server.accessTokenLifetime = 2
  try {
    const manager = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl })
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
