'use strict'
// A local stand-in for Sonetel's REST API (https://public-api.sonetel.com), beside the
// token server: bearer tokens are checked against the tokens that server issued, and the
// answers use Sonetel's envelope, `{"status":"success"|"failed","response":…}`, with many
// failures answered as HTTP 200 and `status: "failed"`, as the real API does.

const crypto = require('node:crypto')
const http = require('node:http')
const https = require('node:https')
const { connectionFault, readBody } = require('./sonetel-server.js')

/** A phone number as Sonetel takes it: E.164, the leading `+` optional. */
const PHONE = /^\+?[1-9]\d{5,14}$/
const SIP = /^sips?:[^@\s]+@[^@\s]+$/i
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/

/**
 * Starts the API on 127.0.0.1 (a free port). `tokens` is the token server from
 * `startSonetelServer`; `tls` ({ cert, key }) serves it over HTTPS.
 * Resolves with `{ origin, requests, reset(), close(), ... }`.
 */
async function startSonetelApi({ tokens, tls, testHooks = false }) {
  const state = { requests: [], failNext: null }
  const sockets = new Set()
  const faults = []
  const timers = new Set()

  const send = (res, status, body, headers = {}) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }
  const success = (res, response, status = 200) => send(res, status, { status: 'success', response })
  const failed = (res, code, detail, status = 200) => send(res, status, { status: 'failed', response: { code, detail } })

  /**
   * Answers as what stands before Sonetel's API does when it is busy or down (a gateway,
   * a load balancer): before any token check. Returns true when it took over the answer.
   */
  function misbehave(fault, req, res, record) {
    if (connectionFault(fault, req, res, record, timers, serve)) return true
    switch (fault.mode) {
      case 'status': { // a gateway's HTML error page
        const status = fault.status || 503
        const headers = { 'content-type': fault.contentType || 'text/html' }
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
        res.writeHead(status, headers)
        const title = `${status} ${http.STATUS_CODES[status] || ''}`
        res.end(fault.body ?? `<html><head><title>${title}</title></head><body><center><h1>${title}</h1></center></body></html>`)
        return true
      }
      case 'rate-limit': { // a rate-limiting gateway's JSON 429
        const headers = { 'content-type': fault.contentType || 'application/json' }
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
        res.writeHead(fault.status || 429, headers)
        res.end(fault.body ?? JSON.stringify({ error: 'too_many_requests', error_description: 'Rate limit exceeded' }))
        return true
      }
      default:
        throw new Error(`unknown API fault mode ${fault.mode}`)
    }
  }

  function serve(req, res, record) {
    let url
    try {
      url = new URL(req.url, 'http://localhost')
    } catch {
      return send(res, 400, { status: 'failed', response: { code: 'INVALID_REQUEST', detail: 'Malformed request path' } })
    }
    // Our own tests' hooks, off unless asked for (Sonetel has no such paths): a redirect to
    // anywhere; after the token check, an echo of the request and an answer that never comes.
    if (testHooks && url.pathname === '/test/redirect') {
      res.writeHead(Number(url.searchParams.get('status') || 302), { location: url.searchParams.get('to') })
      return res.end()
    }
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization || '')
    const who = auth && tokens.accessTokenInfo(auth[1])
    if (!who) {
      return send(res, 401, { error: 'invalid_token', error_description: auth ? 'Access token expired or revoked' : 'Full authentication is required to access this resource' },
        { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (testHooks && url.pathname === '/test/echo') {
      return success(res, { method: req.method, contentType: req.headers['content-type'] ?? null, body: record.body, query: url.search })
    }
    if (testHooks && url.pathname === '/test/hang') return undefined
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
    const users = /^\/account\/([^/]+)\/user\/?$/.exec(url.pathname)
    if (users && (req.method === 'GET' || req.method === 'HEAD')) {
      if (users[1] !== String(who.accId)) return failed(res, 'ACCESS_DENIED', `No access to account ${users[1]}`)
      return success(res, [{ user_id: who.userId, email: who.email, user_type: 'admin', status: 'active' }])
    }
    if (url.pathname === '/make-calls/call/call-back' && req.method === 'POST') {
      let body
      try { body = JSON.parse(record.body) } catch { return failed(res, 'INVALID_REQUEST', 'The body is not JSON', 400) }
      if (body === null || typeof body !== 'object') return failed(res, 'INVALID_REQUEST', 'The body is not a JSON object', 400)
      // As Sonetel takes them: a phone number or a SIP address, and for call1 also the
      // e-mail of one of the account's users.
      const reachable = (v, first) => typeof v === 'string' && (PHONE.test(v) || SIP.test(v) || (first && EMAIL.test(v)))
      if (!reachable(body.call1, true) || !reachable(body.call2, false)) {
        return failed(res, 'INVALID_NUMBER', 'call1 and call2 must be phone numbers in E.164 form or SIP addresses (call1 may be a user\'s e-mail)')
      }
      if (EMAIL.test(body.call1) && !SIP.test(body.call1) && body.call1 !== who.email) {
        return failed(res, 'USER_NOT_FOUND', 'call1 is not a user of this account')
      }
      const show = (v) => (v === undefined ? 'automatic' : v)
      return success(res, {
        session_id: crypto.randomUUID(), call1: body.call1, call2: body.call2,
        show_1: show(body.show_1), show_2: show(body.show_2), ...(body.app_id === undefined ? {} : { app_id: body.app_id }),
      }, 202)
    }
    return send(res, 404, { status: 'failed', response: { code: 'NOT_FOUND', detail: `No resource ${url.pathname}` } })
  }

  const handle = (req, res) => {
    readBody(req, res, (body) => {
      const record = { method: req.method, path: req.url, headers: { ...req.headers }, body: body.toString('utf8') }
      state.requests.push(record)
      const fault = faults[0]
      if (fault !== undefined && record.faulted === undefined) {
        if (--fault.times <= 0) faults.shift()
        record.faulted = fault.mode
        if (misbehave(fault, req, res, record)) return
      }
      serve(req, res, record)
    })
  }
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handle) : http.createServer(handle)
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`
  return Object.assign(state, {
    origin,
    server,
    /** The next authorised request is answered `{"status":"failed"}` with this code and detail. */
    failWith(code, detail, status = 200) { state.failNext = { code, detail, status } },
    /** Switches on a fault for the next `times` requests (default: all until cleared). */
    fault(mode, opts = {}) { faults.push({ times: Infinity, ...opts, mode }) },
    clearFaults() { faults.length = 0 },
    reset() { state.requests.length = 0; state.failNext = null; faults.length = 0 },
    dropConnections() { for (const s of sockets) s.destroy() },
    async close() {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  })
}

module.exports = { startSonetelApi }
