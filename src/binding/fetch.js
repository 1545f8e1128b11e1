// Compiled once per JavaScript environment by src/binding/api.rs (include_str!): the two
// steps of TokenManager#fetch that belong to the WHATWG fetch world. `prepare` turns
// fetch's arguments into plain parts with fetch's own rules (URL resolution, method
// normalisation, Headers, every body type), and `respond` makes the standard Response.
// The HTTP itself, the token and the 401 retry happen in Rust. The intrinsics are taken
// when this runs, so later tampering with the globals does not change what it does.
(function (g) {
  'use strict'
  const { Request, Response, URL, Uint8Array, Object, JSON, TypeError } = g
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

  async function prepare(input, init, base) {
    let url
    if (typeof input === 'string') url = new URL(input, base).href
    else if (input instanceof URL) url = input.href
    else if (input instanceof Request) url = input.url
    else throw new TypeError('input must be a string, a URL or a Request')
    // Own properties only: what Object.prototype carries is not the caller's init.
    const own = Object.create(null)
    if (init !== undefined && init !== null) {
      if (typeof init !== 'object') throw new TypeError('init must be an object')
      for (const k of keys(init)) own[k] = init[k]
    }
    const request = new Request(input instanceof Request ? input : url, own)
    const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer())
    const canReplay = hasOwn.call(own, 'body') ? replayable(own.body) : !(input instanceof Request && input.body !== null)
    const signal = hasOwn.call(own, 'signal') ? own.signal : input instanceof Request ? input.signal : undefined
    const headers = []
    for (const pair of request.headers) headers.push(pair)
    return {
      url: request.url,
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
