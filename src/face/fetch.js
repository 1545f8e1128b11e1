'use strict'
// The WHATWG side of `manager.fetch`: fetch's own argument rules (URL resolution, method
// normalisation, Headers, every body type) in, a standard Response out. The HTTP, the
// token, the origin rule, redirects and the 401 retry happen natively.

// Node loads its fetch (undici) the first time one of these globals is read, which costs
// more than the rest of this package's load: they are taken at the first manager.fetch.
let web
function whatwg() {
  web ??= { Request, Response, Headers, FormData, Blob, URLSearchParams }
  return web
}
const { hasOwn, keys, defineProperty, create } = Object
const { isView } = ArrayBuffer
const { bare, data } = require('./errors.js')

/** Largest request body sent; Sonetel's requests are small JSON. */
const MAX_REQUEST_BODY = 16 * 1024 * 1024

// Bodies that can be sent a second time, after a 401 and a new token. A stream (or a
// Request's own body, which is one) cannot.
const replayable = (body) =>
  body === undefined || body === null || typeof body === 'string' || body instanceof ArrayBuffer ||
  isView(body) || body instanceof web.URLSearchParams || body instanceof web.FormData || body instanceof web.Blob

/** The body, read no further than `limit` bytes; null when `signal` aborts first. */
async function readBody(stream, signal, limit) {
  const reader = stream.getReader()
  let stop
  const aborted = new Promise((resolve) => { stop = resolve })
  const onAbort = () => stop(null)
  if (signal) {
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, bare({ once: true }))
  }
  const chunks = []
  let size = 0
  let done = false
  try {
    for (;;) {
      const step = await Promise.race([reader.read(), aborted])
      if (step === null) return null
      if (step.done) break
      size += step.value.byteLength
      if (size > limit) throw new TypeError(`body is larger than ${limit} bytes`)
      chunks.push(step.value)
    }
    done = true
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort)
    if (!done) reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks, size)
}

// An argument fetch's rules refuse, in our words, which never quote the value (a URL's
// password, a header's secret). `type` marks a wrong type rather than value.
const refuse = (error, type = false) => bare({ error, type, aborted: false })

/** Which part of `init` a Request refused. */
function refusal(url, own) {
  const { Request, Headers } = whatwg()
  if (hasOwn(own, 'method')) {
    try { new Request(url, { method: own.method }) } catch { return refuse('init.method is not a method fetch can send') }
  }
  if (hasOwn(own, 'headers')) {
    try { new Headers(own.headers) } catch { return refuse('init.headers has a header name or value that is not valid') }
  }
  return refuse('init is not valid for fetch (its body, mode, redirect or another member)')
}

/**
 * fetch's arguments as plain parts: `{ url, method, headers, body, replayable, signal,
 * redirect }`, or `{ error, type }` for arguments fetch refuses, or `{ aborted }`.
 * @returns {Promise<any>}
 */
async function prepare(input, init, base) {
  const { Request } = whatwg()
  if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
    return refuse('input must be a string, a URL or a Request', true)
  }
  let url
  const isRequest = input instanceof Request
  try {
    // As fetch: a Request's URL, else the input as text (a URL, or anything with a toString).
    url = new URL(isRequest ? input.url : typeof input === 'string' ? input : String(input), base)
  } catch {
    return refuse('input is not a valid URL or path')
  }
  if (url.username !== '' || url.password !== '') return refuse('input must not carry a user name or password')
  url.hash = ''
  // Own properties only: what Object.prototype carries is not the caller's init.
  const own = create(null)
  if (init !== undefined && init !== null) {
    if (typeof init !== 'object' && typeof init !== 'function') return refuse('init must be an object', true)
    try {
      for (const k of keys(init)) own[k] = init[k]
    } catch {
      return refuse('init could not be read (a getter or a Proxy trap threw)')
    }
  }
  let request
  try {
    request = new Request(isRequest ? input : url.href, own)
  } catch {
    return refusal(url.href, own)
  }
  const canReplay = hasOwn(own, 'body') ? replayable(own.body) : !(isRequest && input.body !== null)
  const signal = hasOwn(own, 'signal') ? own.signal ?? undefined : isRequest ? input.signal : undefined
  let body = null
  if (request.body !== null) {
    try {
      body = await readBody(request.body, signal, MAX_REQUEST_BODY)
    } catch (e) {
      return refuse(String(e?.message ?? 'body could not be read'))
    }
    if (body === null) return bare({ aborted: true, signal })
  }
  const headers = []
  for (const [name, value] of request.headers) headers.push(name, value)
  // What an async function returns must not be a thenable through Object.prototype.
  const timeoutMs = hasOwn(own, 'timeoutMs') ? own.timeoutMs : undefined
  return bare({ url: url.href, method: request.method, headers, body, replayable: canReplay, signal, redirect: request.redirect, timeoutMs, error: undefined, type: false, aborted: false })
}

const nullBodyStatus = (status) => status === 204 || status === 205 || status === 304

/** The standard Response for the binding's answer (`meta`) and its body. */
function respond(meta, body) {
  const { Response } = whatwg()
  const response = new Response(nullBodyStatus(meta.status) ? null : body, {
    status: meta.status, statusText: meta.statusText, headers: meta.headers,
  })
  defineProperty(response, 'url', data(meta.url))
  defineProperty(response, 'redirected', data(meta.redirected))
  return response
}

module.exports = { prepare, respond, MAX_REQUEST_BODY }
