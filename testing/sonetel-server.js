'use strict'
// A local stand-in for Sonetel's token endpoint, used by the tests, the demo and the
// benchmark. It behaves like the real service (a Spring OAuth2 server): Basic client
// credentials, multipart and urlencoded bodies, the password and refresh_token grants,
// JWT-shaped tokens, Spring's error bodies (including its habit of echoing a bad
// refresh token). Tests can switch on faults and read back every request it received.

const crypto = require('node:crypto')
const http = require('node:http')
const https = require('node:https')
const { testCertificates } = require('./certs')

const TOKEN_PATH = '/SonetelAuth/beta/oauth/token'
const CLIENT_AUTH = 'Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64')
const DEFAULT_USERS = { 'demo@example.com': 'demo-password' }
const SCOPE = 'account.read account.write phone.call phonenumber.read'

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

function jwt(claims) {
  return `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}.${crypto.randomBytes(32).toString('base64url')}`
}

function parseMultipart(body, contentType) {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType)
  if (!match) return {}
  const boundary = '--' + (match[1] || match[2]).trim()
  const fields = {}
  for (const part of body.toString('utf8').split(boundary).slice(1)) {
    if (part.startsWith('--')) break
    const split = part.indexOf('\r\n\r\n')
    if (split < 0) continue
    const name = /name="([^"]*)"/i.exec(part.slice(0, split))
    if (name) fields[name[1]] = part.slice(split + 4).replace(/\r\n$/, '')
  }
  return fields
}

const closed = new WeakMap()
/** One promise per socket (not one listener per request on a kept-alive socket). */
function closedPromise(socket) {
  if (!closed.has(socket)) {
    closed.set(socket, socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', resolve)))
  }
  return closed.get(socket)
}

function parseBody(body, contentType = '') {
  if (/^multipart\/form-data/i.test(contentType)) return parseMultipart(body, contentType)
  if (/^application\/x-www-form-urlencoded/i.test(contentType)) {
    return Object.fromEntries(new URLSearchParams(body.toString('utf8')))
  }
  return {}
}

/**
 * Starts the server on 127.0.0.1 (a free port unless `port` is given).
 * Options: `https` (serve TLS with a certificate from a generated CA, exposed as `ca`),
 * `users` ({ email: password }; default: the demo account), `accessTokenLifetime` and `refreshTokenLifetime` (s).
 */
async function startSonetelServer(options = {}) {
  const users = { ...(options.users || DEFAULT_USERS) }
  const refreshTokens = new Map() // token -> { email, exp }
  const accessTokens = new Map() // token -> { email, exp, userId, accId }
  const faults = []
  const sockets = new Set()
  const timers = new Set()
  let nextUserId = 1000

  const state = {
    requests: [],
    counts: { password: 0, refresh_token: 0, other: 0 },
    accessTokenLifetime: options.accessTokenLifetime ?? 86400,
    refreshTokenLifetime: options.refreshTokenLifetime ?? 30 * 86400,
    /** Seconds the server's clock is ahead of ours (negative: behind); moves iat and exp. */
    clockOffset: options.clockOffset ?? 0,
    /** A refresh token works once; each refresh grant answers with a new one. */
    rotateRefreshTokens: options.rotateRefreshTokens ?? false,
    /** The API refuses every access token (401), as for an account that lost its access. */
    refuseApiTokens: false,
  }

  const userIds = new Map(Object.keys(users).map((email) => [email, String(nextUserId++)]))

  function issue(email, wantRefresh) {
    const now = Math.floor(Date.now() / 1000) + state.clockOffset
    const jti = crypto.randomUUID()
    // An account added on the fly (stand-in.users[email] = password) gets its ids here.
    if (!userIds.has(email)) userIds.set(email, String(nextUserId++))
    const userId = userIds.get(email)
    const accId = 200000000 + Number(userId)
    const claims = {
      user_name: email, scope: SCOPE.split(' '), iss: 'https://api.sonetel.com', aud: ['sonetel-api'],
      exp: now + state.accessTokenLifetime, iat: now, user_id: userId, acc_id: accId,
      authorities: ['ROLE_USER'], jti, client_id: 'sonetel-api',
    }
    const accessToken = jwt(claims)
    accessTokens.set(accessToken, { email, exp: claims.exp, userId, accId })
    const answer = {
      access_token: accessToken, token_type: 'bearer', expires_in: state.accessTokenLifetime - 1,
      scope: SCOPE, user_id: userId, acc_id: accId, jti,
    }
    if (wantRefresh) {
      const exp = now + state.refreshTokenLifetime
      const refresh = jwt({ ...claims, exp, ati: jti, jti: crypto.randomUUID() })
      refreshTokens.set(refresh, { email, exp })
      answer.refresh_token = refresh
    }
    // Spring puts refresh_token right after token_type; keep Sonetel's field order.
    const { access_token, token_type, refresh_token, ...rest } = answer
    return refresh_token ? { access_token, token_type, refresh_token, ...rest } : { access_token, token_type, ...rest }
  }

  function json(res, status, body, headers = {}) {
    const text = JSON.stringify(body)
    res.writeHead(status, {
      'content-type': 'application/json;charset=UTF-8', 'cache-control': 'no-store', pragma: 'no-cache',
      'content-length': Buffer.byteLength(text), ...headers,
    })
    res.end(text)
  }

  const oauthError = (res, status, error, description, headers) =>
    json(res, status, { error, error_description: description }, headers)

  /** Answers as the real service would. */
  function serve(req, res, record) {
    if (record.path !== TOKEN_PATH) {
      return json(res, 404, { timestamp: new Date().toISOString(), status: 404, error: 'Not Found', path: record.path })
    }
    if (req.method !== 'POST') {
      return oauthError(res, 405, 'method_not_allowed', `Request method '${req.method}' not supported`)
    }
    if (req.headers.authorization !== CLIENT_AUTH) {
      return oauthError(res, 401, 'unauthorized', 'Full authentication is required to access this resource',
        { 'www-authenticate': 'Basic realm="oauth2/client"' })
    }
    const f = record.fields
    const wantRefresh = f.refresh === 'yes'
    if (!f.grant_type) {
      state.counts.other++
      return oauthError(res, 400, 'invalid_request', 'Missing grant type')
    }
    if (f.grant_type === 'password') {
      state.counts.password++
      // As Sonetel documents it: an unknown user is a 401, a wrong password a 400.
      if (f.username && !Object.hasOwn(users, f.username)) {
        return oauthError(res, 401, 'unauthorized', `User with name ${f.username} not found`)
      }
      if (!f.username || !f.password || users[f.username] !== f.password) {
        return oauthError(res, 400, 'invalid_grant', 'Bad credentials')
      }
      return json(res, 200, issue(f.username, wantRefresh))
    }
    if (f.grant_type === 'refresh_token') {
      state.counts.refresh_token++
      const known = refreshTokens.get(f.refresh_token)
      if (!known || known.exp <= Date.now() / 1000 + state.clockOffset) {
        return oauthError(res, 400, 'invalid_grant', `Invalid refresh token: ${f.refresh_token}`)
      }
      if (state.rotateRefreshTokens) refreshTokens.delete(f.refresh_token)
      return json(res, 200, issue(known.email, wantRefresh || state.rotateRefreshTokens))
    }
    state.counts.other++
    return oauthError(res, 400, 'unsupported_grant_type', `Unsupported grant type: ${f.grant_type}`)
  }

  /** Misbehaves as a test asked. Returns true when it took over the answer. */
  function misbehave(fault, req, res, record) {
    const html = (status, title) => `<html><head><title>${status} ${title}</title></head><body><center><h1>${status} ${title}</h1></center><hr><center>nginx</center></body></html>`
    if (connectionFault(fault, req, res, record, timers, serve)) return true
    switch (fault.mode) {
      case 'stall-body':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        res.write('{"access_token":"')
        return true
      case 'reset': {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        res.write('{"access_token":"abc', () => setImmediate(() => req.socket.resetAndDestroy()))
        return true
      }
      case 'status': {
        const status = fault.status || 500
        const headers = { 'content-type': 'text/html' }
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
        res.writeHead(status, headers)
        res.end(fault.body ?? html(status, http.STATUS_CODES[status] || ''))
        return true
      }
      case 'rate-limit': { // an OAuth-shaped 429, as a rate-limiting gateway answers
        const headers = fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) }
        oauthError(res, 429, 'too_many_requests', 'Rate limit exceeded', headers)
        return true
      }
      case 'redirect':
        res.writeHead(fault.status || 307, { location: fault.location || 'https://evil.example/steal' })
        res.end()
        return true
      case 'body': {
        res.writeHead(fault.status || 200, { 'content-type': fault.contentType || 'application/json' })
        res.end(fault.body)
        return true
      }
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' })
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        let left = fault.bytes || 8 * 1024 * 1024
        record.bytesWritten = 0
        res.write('{"access_token":"x","pad":"')
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left -= chunk.length
            record.bytesWritten += chunk.length
            if (!res.write(chunk)) return res.once('drain', pump)
          }
          res.end('"}')
        }
        res.on('error', () => {})
        pump()
        return true
      }
      default:
        throw new Error(`unknown fault mode ${fault.mode}`)
    }
  }

  function handle(req, res) {
    readBody(req, res, (body) => {
      const contentType = req.headers['content-type'] || ''
      const record = {
        method: req.method, path: req.url.split('?')[0], headers: { ...req.headers },
        contentType, body: body.toString('utf8'), fields: parseBody(body, contentType),
      }
      // Lets a test see the client drop this request's connection.
      Object.defineProperty(record, 'connectionClosed', { value: closedPromise(req.socket) })
      state.requests.push(record)
      const fault = faults[0]
      if (fault) {
        if (--fault.times <= 0) faults.shift()
        if (misbehave(fault, req, res, record)) return
      }
      serve(req, res, record)
    })
  }

  const certs = options.https ? (options.cert ? { cert: options.cert, key: options.key, ca: undefined } : testCertificates()) : null
  const server = certs
    ? https.createServer({ cert: options.cert || certs.cert, key: options.key || certs.key }, handle)
    : http.createServer(handle)
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.on('secureConnection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.keepAliveTimeout = 30_000
  await new Promise((resolve) => server.listen(options.port || 0, options.host || '127.0.0.1', resolve))
  const { port } = server.address()
  const origin = `${certs ? 'https' : 'http'}://${options.hostname || '127.0.0.1'}:${port}`

  return Object.assign(state, {
    origin,
    url: origin + TOKEN_PATH,
    port,
    ca: certs ? certs.ca : undefined,
    server,
    users,
    /** Requests received with this grant_type, answered normally or by a fault. */
    sent: (grantType) => state.requests.filter((r) => r.fields.grant_type === grantType).length,
    /** Switches on a fault for the next `times` requests (default: all until cleared). */
    fault(mode, opts = {}) { faults.push({ times: Infinity, ...opts, mode }); return this },
    clearFaults() { faults.length = 0 },
    /** Makes every refresh token issued so far invalid. */
    revokeRefreshTokens() { refreshTokens.clear() },
    /** Makes every access token issued so far invalid (the API stand-in answers 401). */
    revokeAccessTokens() { accessTokens.clear() },
    /** What an access token stands for, while it is valid by the server's clock; else null. */
    accessTokenInfo(token) {
      if (state.refuseApiTokens) return null
      const known = accessTokens.get(token)
      return known && known.exp > Date.now() / 1000 + state.clockOffset ? known : null
    },
    reset() { state.requests.length = 0; Object.keys(state.counts).forEach((k) => { state.counts[k] = 0 }); faults.length = 0 },
    openConnections: () => sockets.size,
    dropConnections() { for (const s of sockets) s.destroy() },
    async close() {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  })
}

/** Largest request body either stand-in reads, as a server in front of Sonetel caps it. */
const MAX_REQUEST_BODY = 1024 * 1024

/**
 * `then(body)` with the request's body; one over MAX_REQUEST_BODY is not kept: it is
 * answered 413 and its connection closed, as a capped server does.
 */
function readBody(req, res, then) {
  const chunks = []
  let size = 0
  req.on('data', (c) => {
    const before = size
    size += c.length
    if (size <= MAX_REQUEST_BODY) chunks.push(c)
    else if (before <= MAX_REQUEST_BODY) {
      chunks.length = 0
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
      res.end(JSON.stringify({ error: 'payload_too_large', error_description: `The request body is larger than ${MAX_REQUEST_BODY} bytes` }), () => req.socket.destroy())
    }
  })
  req.on('end', () => { if (size <= MAX_REQUEST_BODY) then(Buffer.concat(chunks)) })
}

/**
 * The faults both stand-ins share: `delay` (`serve` answers later), `hang` (nothing) and
 * `close` (the connection dropped). Returns true when `fault` was one of them.
 */
function connectionFault(fault, req, res, record, timers, serve) {
  switch (fault.mode) {
    case 'delay':
      delay(fault, record, timers, () => { if (!res.destroyed) serve(req, res, record) })
      return true
    case 'hang':
      return true
    case 'close':
      req.socket.destroy()
      return true
    default:
      return false
  }
}

/**
 * A `delay` fault: `answer()` after `fault.ms` (a number, or a function of the request
 * that picks one), or once `fault.until` settles. Its timer is kept in `timers`, for close().
 */
function delay(fault, record, timers, answer) {
  if (fault.until !== undefined) {
    Promise.resolve(fault.until).then(answer, answer)
    return
  }
  let ms = fault.ms
  if (typeof ms === 'function') {
    try { ms = ms(record) } catch { ms = 0 }
  }
  const timer = setTimeout(() => { timers.delete(timer); answer() }, Number.isFinite(ms) && ms >= 0 ? ms : 0)
  timers.add(timer)
}

module.exports = { startSonetelServer, TOKEN_PATH, DEFAULT_USERS, MAX_REQUEST_BODY, parseBody, connectionFault, readBody }
