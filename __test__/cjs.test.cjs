// The addon from CommonJS `require`.
const assert = require('node:assert/strict')
const { test } = require('node:test')
const { startSonetel } = require('sonetel-auth/testing')

test('require() gives the whole API and it works', async () => {
  const auth = require('..')
  for (const name of ['createAccessToken', 'refreshAccessToken', 'decodeAccessToken', 'TokenManager']) {
    assert.equal(typeof auth[name], 'function', name)
  }
  const server = await startSonetel()
  try {
    const token = await auth.createAccessToken('demo@example.com', 'demo-password', { tokenUrl: server.tokenUrl })
    assert.equal(token.token_type, 'bearer')
  } finally {
    await server.close()
  }
})
