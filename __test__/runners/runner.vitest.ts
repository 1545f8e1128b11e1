// Copied into a Vitest project by __test__/runners.test.mjs and run in the default pool
// and in vmThreads (every object made in a vm context): fake timers, and `await using`
// (esbuild compiles it for Node.js 20 and 22, looking up Symbol.for('Symbol.asyncDispose')
// where the realm has no Symbol.asyncDispose).
import { afterEach, expect, test, vi } from 'vitest'
import { TokenManager } from 'sonetel-auth'
import { startSonetel } from 'sonetel-auth/testing'

afterEach(() => {
  vi.useRealTimers()
})

test('a token and an API answer under vi.useFakeTimers()', async () => {
  await using sonetel = await startSonetel()
  vi.useFakeTimers()
  await using manager = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
  expect(await manager.getAccessToken()).toMatch(/^eyJ/)
  const account = await manager.api('/account/{acc_id}')
  expect(account.email).toBe(sonetel.username)
})

test('await using closes the manager', async () => {
  await using sonetel = await startSonetel()
  let kept: TokenManager
  {
    await using manager = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl })
    expect(await manager.getAccessToken()).toMatch(/^eyJ/)
    kept = manager
  }
  await expect(kept.getAccessToken()).rejects.toMatchObject({ code: 'ERR_SONETEL_CLOSED' })
})
