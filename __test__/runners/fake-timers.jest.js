// Copied into a Jest project as sonetel.test.js by __test__/runners.test.mjs, and run
// with fake timers enabled in the config (globally) or, with FAKE_TIMERS set, by the test
// itself: modern or legacy. It gets a token and an API answer, and Jest must then exit
// by itself (no --forceExit).
const { createAccessToken, TokenManager } = require('sonetel-auth')
const { startSonetel } = require('sonetel-auth/testing')

let sonetel
beforeAll(async () => {
  sonetel = await startSonetel()
})
afterAll(() => sonetel.close())

test('a token and an API answer under fake timers', async () => {
  if (process.env.FAKE_TIMERS) jest.useFakeTimers({ legacyFakeTimers: process.env.FAKE_TIMERS === 'legacy' })
  const manager = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
  expect(await manager.getAccessToken()).toMatch(/^eyJ/)
  const account = await manager.api('/account/{acc_id}')
  expect(account.email).toBe(sonetel.username)
  const token = await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl })
  expect(token.token_type).toBe('bearer')
  await manager.close()
})
