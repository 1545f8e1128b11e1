// Compiled once per JavaScript environment by src/binding/api.rs (include_str!): the two
// steps of TokenManager#fetch that belong to the WHATWG fetch world. `prepare` turns
// fetch's arguments into plain parts with fetch's own rules (URL resolution, method
// normalisation, Headers, every body type), and `respond` makes the standard Response.
// The HTTP itself, the token and the 401 retry happen in Rust. The intrinsics are taken
// when this runs, so later tampering with the globals does not change what it does.
(function (g) {
  'use strict'
  const { Request, Response, Headers, URL, Uint8Array, Object, JSON, TypeError, Promise } = g
  const race = Promise.race.bind(Promise)
  const hasOwn = Object.prototype.hasOwnProperty
  const keys = Object.keys
  const defineProperty = Object.defineProperty
  const isView = g.ArrayBuffer.isView
  const ArrayBuffer_ = g.ArrayBuffer
  const Blob = g.Blob
  const FormData = g.FormData
  const URLSearchParams = g.URLSearchParams

  // Bodies that can be sent a second time, after a 401 and a new token. A stream (or a
  // Request's own body, which is one) cannot.
  const replayable = (body) =>
    body === undefined || body === null || typeof body === 'string' || body instanceof ArrayBuffer_ ||
    isView(body) || (URLSearchParams && body instanceof URLSearchParams) ||
    (FormData && body instanceof FormData) || (Blob && body instanceof Blob)

  // The body, read no further than `limit` bytes and no longer than `signal` allows:
  // null when the signal aborts (the call then rejects with the AbortError).
  async function readBody(stream, signal, limit) {
    const reader = stream.getReader()
    let stop
    const aborted = new Promise((resolve) => { stop = resolve })
    const onAbort = () => stop(null)
    if (signal) {
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
    const chunks = []
    let size = 0
    let done = false
    try {
      for (;;) {
        const step = await race([reader.read(), aborted])
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
    const body = new Uint8Array(size)
    let at = 0
    for (const chunk of chunks) { body.set(chunk, at); at += chunk.byteLength }
    return body
  }

  // An argument fetch's rules refuse: said in our words, which never quote the value (a
  // URL's password, a header's secret). `type` marks a wrong type rather than value.
  const refuse = (error, type = false) => ({ error, type })

  // Which part of `init` a Request refused.
  function refusal(url, own) {
    if (hasOwn.call(own, 'method')) {
      try { new Request(url, { method: own.method }) } catch { return refuse('init.method is not a method fetch can send') }
    }
    if (hasOwn.call(own, 'headers')) {
      try { new Headers(own.headers) } catch { return refuse('init.headers has a header name or value that is not valid') }
    }
    return refuse('init is not valid for fetch (its body, mode, redirect or another member)')
  }

  async function prepare(input, init, base, limit) {
    let url
    if (typeof input === 'string') {
      try { url = new URL(input, base) } catch { return refuse('input is not a valid URL or path') }
    } else if (input instanceof URL) url = new URL(input.href)
    else if (input instanceof Request) url = new URL(input.url)
    else return refuse('input must be a string, a URL or a Request', true)
    if (url.username !== '' || url.password !== '') return refuse('input must not carry a user name or password')
    url.hash = ''
    // Own properties only: what Object.prototype carries is not the caller's init.
    const own = Object.create(null)
    if (init !== undefined && init !== null) {
      if (typeof init !== 'object') return refuse('init must be an object', true)
      for (const k of keys(init)) own[k] = init[k]
    }
    let request
    try {
      request = new Request(input instanceof Request ? input : url.href, own)
    } catch {
      return refusal(url.href, own)
    }
    const canReplay = hasOwn.call(own, 'body') ? replayable(own.body) : !(input instanceof Request && input.body !== null)
    const signal = hasOwn.call(own, 'signal') ? own.signal : input instanceof Request ? input.signal : undefined
    const body = request.body === null ? null : await readBody(request.body, signal, limit)
    const headers = []
    for (const pair of request.headers) headers.push(pair)
    return {
      url: url.href,
      method: request.method,
      headers: JSON.stringify(headers),
      body,
      replayable: canReplay,
      signal: signal ?? undefined,
      redirect: request.redirect,
    }
  }

  const nullBodyStatus = (status) => status === 204 || status === 205 || status === 304

  function respond(status, statusText, headers, body, url, redirected) {
    const response = new Response(nullBodyStatus(status) ? null : body, { status, statusText, headers: JSON.parse(headers) })
    defineProperty(response, 'url', { value: url, enumerable: true })
    defineProperty(response, 'redirected', { value: redirected, enumerable: true })
    return response
  }

  return { prepare, respond }
})(globalThis)
