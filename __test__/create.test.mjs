// createAccessToken against the local Sonetel server, over HTTP and HTTPS.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { addon, startSonetel, USER, PASSWORD } from './helpers/common.mjs'

const { createAccessToken, decodeAccessToken } = addon

for (const scheme of ['http', 'https']) {
  describe(`createAccessToken over ${scheme}`, () => {
    let server
    let opts
    before(async () => {
      server = await startSonetel({ https: scheme === 'https' })
      opts = scheme === 'https'
        ? { tokenUrl: server.tokenUrl.replace('127.0.0.1', 'localhost'), ca: server.ca }
        : { tokenUrl: server.tokenUrl }
    })
    after(() => server.close())

    test('sends what Sonetel documents: POST, Basic sonetel-api, multipart fields', async () => {
      server.reset()
      await createAccessToken(USER, PASSWORD, opts)
      assert.equal(server.requests.length, 1)
      const [req] = server.requests
      assert.equal(req.method, 'POST')
      assert.equal(req.path, '/SonetelAuth/beta/oauth/token')
      assert.equal(req.headers.authorization, 'Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64'))
      assert.match(req.contentType, /^multipart\/form-data; boundary=\S+$/)
      assert.deepEqual(req.fields, { grant_type: 'password', username: USER, password: PASSWORD, refresh: 'yes' })
    })

    test('refresh: false sends refresh=no and gets no refresh token', async () => {
      server.reset()
      const token = await createAccessToken(USER, PASSWORD, { ...opts, refresh: false })
      assert.equal(server.requests[0].fields.refresh, 'no')
      assert.equal(token.refresh_token, undefined)
    })

    test('resolves with every field the server sent, names unchanged', async () => {
      const token = await createAccessToken(USER, PASSWORD, opts)
      assert.deepEqual(Object.keys(token),
        ['access_token', 'token_type', 'refresh_token', 'expires_in', 'scope', 'user_id', 'acc_id', 'jti'])
      assert.equal(token.token_type, 'bearer')
      assert.equal(typeof token.expires_in, 'number')
      const claims = decodeAccessToken(token.access_token)
      assert.equal(claims.user_name, USER)
      assert.equal(claims.acc_id, token.acc_id)
      assert.ok(claims.exp > Date.now() / 1000 + 3600)
    })

    test('a password given as a Buffer works the same', async () => {
      server.reset()
      await createAccessToken(USER, Buffer.from(PASSWORD), opts)
      assert.equal(server.requests[0].fields.password, PASSWORD)
    })

    test('200 concurrent calls all succeed, over kept-alive connections', async () => {
      server.reset()
      const tokens = await Promise.all(Array.from({ length: 200 }, () => createAccessToken(USER, PASSWORD, opts)))
      assert.equal(new Set(tokens.map((t) => t.access_token)).size, 200)
      assert.equal(server.counts.password, 200)
    })
  })
}

test('field values with multipart-special characters arrive intact', async () => {
  const tricky = 'p@ss"word\r\n--boundary; name="x"\u00e9\u{1F600}'
  const server = await startSonetel({ users: { 'tricky+user@example.com': tricky } })
  try {
    const token = await createAccessToken('tricky+user@example.com', tricky, { tokenUrl: server.tokenUrl })
    assert.equal(server.requests[0].fields.password, tricky)
    assert.equal(token.token_type, 'bearer')
  } finally {
    await server.close()
  }
})

test('the local server takes urlencoded bodies too, like Sonetel', async () => {
  const server = await startSonetel()
  try {
    const res = await fetch(server.tokenUrl, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64') },
      body: new URLSearchParams({ grant_type: 'password', username: USER, password: PASSWORD, refresh: 'no' }),
    })
    assert.equal(res.status, 200)
    const body = await res.json()
    assert.equal(body.token_type, 'bearer')
    assert.equal(body.refresh_token, undefined)
    assert.match(server.requests[0].contentType, /^application\/x-www-form-urlencoded/)
  } finally {
    await server.close()
  }
})
