// The addon from an ES module: named imports and the default import.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import auth, { createAccessToken, TokenManager } from '../index.js'
import { startSonetel, USER, PASSWORD } from './helpers/common.mjs'

test('named ESM imports work', async () => {
  assert.equal(auth.createAccessToken, createAccessToken)
  const server = await startSonetel()
  try {
    const token = await createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl })
    assert.equal(token.token_type, 'bearer')
    const m = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl })
    assert.equal(typeof (await m.getAccessToken()), 'string')
  } finally {
    await server.close()
  }
})
