// Fault injection: a misbehaving server or network never hangs a call, never crashes
// the process, always rejects with the exact documented code, and never leaks secrets.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { addon, assertNoSecret, rejection, startSonetel, USER, PASSWORD } from './helpers/common.mjs'

const { createAccessToken, refreshAccessToken } = addon
const TIMEOUT = 1500
// Generous: a loaded 2-core CI machine must not fail this; a hang still would.
const MARGIN = 5000

let server
let tls
before(async () => {
  server = await startSonetel()
  tls = await startSonetel({ https: true })
})
after(async () => {
  await server.close()
  await tls.close()
})

const closedPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
})

// [label, fault to switch on (or null), expected code, expected props, options override]
const cases = [
  ['accepts and never answers', ['hang'], 'ERR_SONETEL_TIMEOUT'],
  ['sends headers then stalls the body', ['stall-body'], 'ERR_SONETEL_TIMEOUT'],
  ['resets the connection mid-body', ['reset'], 'ERR_SONETEL_NETWORK'],
  ['closes the connection before answering', ['close'], 'ERR_SONETEL_NETWORK'],
  ['answers 500', ['status', { status: 500 }], 'ERR_SONETEL_HTTP', { status: 500 }],
  ['answers 502 with an HTML page', ['status', { status: 502 }], 'ERR_SONETEL_HTTP', { status: 502, body: /502 Bad Gateway/ }],
  ['answers 503 with Retry-After', ['status', { status: 503, retryAfter: 7 }], 'ERR_SONETEL_HTTP', { status: 503 }],
  ['answers 200 with broken JSON', ['body', { body: '{"access_token":' }], 'ERR_SONETEL_RESPONSE', { status: 200 }],
  ['answers 200 with an empty body', ['body', { body: '' }], 'ERR_SONETEL_RESPONSE', { status: 200 }],
  ['answers 200 with a JSON array', ['body', { body: '[{"access_token":"x"}]' }], 'ERR_SONETEL_RESPONSE', { status: 200 }],
  ['answers 200 with access_token not a string', ['body', { body: '{"access_token":12345}' }], 'ERR_SONETEL_RESPONSE', { status: 200 }],
  ['answers 200 without access_token', ['body', { body: '{"token_type":"bearer"}' }], 'ERR_SONETEL_RESPONSE', { status: 200 }],
  ['answers 200 with a body over the 1 MiB cap', ['huge', { bytes: 16 * 1024 * 1024 }], 'ERR_SONETEL_RESPONSE', { status: 200, message: /over 1048576 bytes/ }],
  ['answers a 307 redirect', ['redirect', { status: 307 }], 'ERR_SONETEL_HTTP', { status: 307 }],
  ['presents a certificate we do not trust', null, 'ERR_SONETEL_NETWORK', { message: /UnknownIssuer|certificate/i }, () => ({ tokenUrl: tls.tokenUrl })],
  ['refuses the connection', null, 'ERR_SONETEL_NETWORK', {}, async () => ({ tokenUrl: `http://127.0.0.1:${await closedPort()}/token` })],
  ['has a host name that does not resolve', null, 'ERR_SONETEL_NETWORK', {}, () => ({ tokenUrl: 'https://no-such-host.invalid/SonetelAuth/beta/oauth/token' })],
]

for (const grant of ['password', 'refresh_token']) {
  describe(`${grant} grant when the server`, () => {
    for (const [label, fault, code, props = {}, override] of cases) {
      test(`${label}: ${code}`, async () => {
        server.reset()
        const fresh = await createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl })
        const secrets = [PASSWORD, fresh.refresh_token, fresh.access_token]
        if (fault) server.fault(fault[0], { times: 1, ...fault[1] })
        const opts = { tokenUrl: server.tokenUrl, timeoutMs: TIMEOUT, ...(override ? await override() : {}) }
        const promise = grant === 'password'
          ? createAccessToken(USER, PASSWORD, opts)
          : refreshAccessToken(fresh.refresh_token, opts)
        const { err, ms } = await rejection(promise, code, props)
        assert.ok(ms < TIMEOUT + MARGIN, `settled in ${Math.round(ms)} ms`)
        assertNoSecret(err, secrets)
        // Still healthy: the next call works.
        const again = await createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl })
        assert.equal(again.token_type, 'bearer')
      })
    }
  })
}

test('a body over the cap is not read to its end', async () => {
  server.reset()
  server.fault('huge', { times: 1, bytes: 256 * 1024 * 1024 })
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl, timeoutMs: 30000 }), 'ERR_SONETEL_RESPONSE')
  await server.requests[0].connectionClosed
  // The client hung up after about 1 MiB; only socket buffers' worth more was written.
  assert.ok(server.requests[0].bytesWritten < 64 * 1024 * 1024, `${server.requests[0].bytesWritten} bytes written`)
})
