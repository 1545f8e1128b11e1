'use strict'
// A local stand-in for Sonetel's REST API (https://public-api.sonetel.com), beside the
// token server: bearer tokens are checked against the tokens that server issued, and the
// answers use Sonetel's envelope, `{"status":"success"|"failed","response":…}`, with many
// failures answered as HTTP 200 and `status: "failed"`, as the real API does.

const crypto = require('node:crypto')
const http = require('node:http')

/**
 * Starts the API on 127.0.0.1 (a free port). `tokens` is the token server from
 * `startSonetelServer`. Resolves with `{ origin, requests, reset(), close(), ... }`.
 */
async function startSonetelApi({ tokens }) {
  const state = { requests: [], failNext: null }
  const sockets = new Set()

  const send = (res, status, body, headers = {}) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }
  const success = (res, response, status = 200) => send(res, status, { status: 'success', response })
  const failed = (res, code, detail, status = 200) => send(res, status, { status: 'failed', response: { code, detail } })

  function serve(req, res, record) {
    const url = new URL(req.url, 'http://localhost')
    // Test hooks, not part of Sonetel's API: a redirect to anywhere; after the token check,
    // an echo of the request and an answer that never comes.
    if (url.pathname === '/test/redirect') {
      res.writeHead(Number(url.searchParams.get('status') || 302), { location: url.searchParams.get('to') })
      return res.end()
    }
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization || '')
    const who = auth && tokens.accessTokenInfo(auth[1])
    if (!who) {
      return send(res, 401, { error: 'invalid_token', error_description: auth ? 'Access token expired or revoked' : 'Full authentication is required to access this resource' },
        { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (url.pathname === '/test/echo') {
      return success(res, { method: req.method, contentType: req.headers['content-type'] ?? null, body: record.body, query: url.search })
    }
    if (url.pathname === '/test/hang') return undefined
    if (state.failNext) {
      const { code, detail, status } = state.failNext
      state.failNext = null
      return failed(res, code, detail, status)
    }
    const account = /^\/account\/([^/]+)(\/phonenumbersubscription)?\/?$/.exec(url.pathname)
    // As Spring does, a GET route answers HEAD too (Node sends no body for it).
    if (account && (req.method === 'GET' || req.method === 'HEAD')) {
      if (account[1] !== String(who.accId)) return failed(res, 'ACCESS_DENIED', `No access to account ${account[1]}`)
      if (account[2]) return success(res, [{ phone_number: '+46850000000', status: 'active' }])
      return success(res, { account_id: who.accId, user_id: who.userId, email: who.email, currency: 'EUR', credit_balance: '12.50' })
    }
    if (url.pathname === '/make-calls/call/call-back' && req.method === 'POST') {
      let body
      try { body = JSON.parse(record.body) } catch { return failed(res, 'INVALID_REQUEST', 'The body is not JSON', 400) }
      const number = /^\+?\d{6,15}$/
      if (!number.test(body.call1 ?? '') || !number.test(body.call2 ?? '')) {
        return failed(res, 'INVALID_NUMBER', 'call1 and call2 must be phone numbers in E.164 form')
      }
      return success(res, { session_id: crypto.randomUUID(), call1: body.call1, call2: body.call2 }, 202)
    }
    return send(res, 404, { status: 'failed', response: { code: 'NOT_FOUND', detail: `No resource ${url.pathname}` } })
  }

  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const record = { method: req.method, path: req.url, headers: { ...req.headers }, body: Buffer.concat(chunks).toString('utf8') }
      state.requests.push(record)
      serve(req, res, record)
    })
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${server.address().port}`
  return Object.assign(state, {
    origin,
    server,
    /** The next authorised request is answered `{"status":"failed"}` with this code and detail. */
    failWith(code, detail, status = 200) { state.failNext = { code, detail, status } },
    reset() { state.requests.length = 0; state.failNext = null },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  })
}

module.exports = { startSonetelApi }
