// Run by __test__/runners.test.mjs with ts-jest, which compiles `await using` for Node.js
// 20 (TypeScript's helper needs Symbol.asyncDispose in Jest's realm: the setup file the
// README gives supplies it where Node.js does not).
import { TokenManager } from 'sonetel-auth'
import { startSonetel } from 'sonetel-auth/testing'

test('await using closes the manager and the stand-in', async () => {
  await using sonetel = await startSonetel()
  let kept: TokenManager
  {
    await using manager = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl })
    expect(await manager.getAccessToken()).toMatch(/^eyJ/)
    kept = manager
  }
  await expect(kept.getAccessToken()).rejects.toMatchObject({ code: 'ERR_SONETEL_CLOSED' })
})
