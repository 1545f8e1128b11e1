'use strict'
// createAccessToken, refreshAccessToken and decodeAccessToken.

const { engine, call, ABORTED } = require('./native.js')
const { fromText, abortError, argTypeError, argValueError } = require('./errors.js')
const options = require('./options.js')
const signals = require('./signals.js')

const { parse } = JSON

/** The request options and signal of `raw`, checked. */
function requestOptions(raw) {
  const fields = options.readOptions(raw, 'options', options.REQUEST_OPTIONS)
  const config = options.requestJson(fields, 'options')
  return { config, signal: fields === undefined ? undefined : options.signal(fields, 'options') }
}

/** Sends a grant; resolves with the outcome's text, or ABORTED. */
function send({ config, signal }, username, secret) {
  const { binding, channel } = engine()
  return call((id) => binding.requestToken(channel, id, config, username, secret), signals.watcher(signal, 'options'))
}

/** The token in `text`, or the error it stands for, thrown with the caller's stack. */
function settle(text, signal, user) {
  if (text === ABORTED) throw abortError(signals.reason(signal))
  if (text.charCodeAt(0) === 118) return parse(text.slice(1))
  throw fromText(text, settle, user)
}

/** @type {typeof import('../../index').createAccessToken} */
async function createAccessToken(username, password, opts) {
  const user = options.text(username, 'username')
  const secret = options.secretBytes(password, 'password')
  const request = requestOptions(opts)
  return settle(await send(request, user, secret), request.signal, user)
}

/** @type {typeof import('../../index').refreshAccessToken} */
async function refreshAccessToken(refreshToken, opts) {
  const token = options.text(refreshToken, 'refreshToken', options.MAX_TOKEN)
  const request = requestOptions(opts)
  return settle(await send(request, undefined, token), request.signal)
}

/** @type {typeof import('../../index').decodeAccessToken} */
function decodeAccessToken(token) {
  if (typeof token !== 'string') throw argTypeError(`token must be a string, received ${options.typeName(token)}`)
  const refuse = (why) => argValueError(`not a JWT: ${why}`)
  if (token.length > options.MAX_TOKEN) throw refuse('longer than 64 KiB')
  const first = token.indexOf('.')
  const second = first < 0 ? -1 : token.indexOf('.', first + 1)
  if (second < 0 || token.indexOf('.', second + 1) >= 0) throw refuse('it does not have three parts')
  let end = second
  while (end > first + 1 && token.charCodeAt(end - 1) === 61 /* = */ && second - end < 2) end--
  const length = end - first - 1
  // The decoder skips what is not base64: a payload that decodes short had some.
  const bytes = Buffer.from(token.slice(first + 1, end), 'base64url')
  if (length === 0 || length % 4 === 1 || bytes.length !== Math.floor((length * 3) / 4)) {
    throw refuse('the payload is not base64url')
  }
  let claims
  try {
    claims = parse(bytes.toString('utf8'))
  } catch {
    throw refuse('the payload is not JSON')
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw refuse('the payload is not a JSON object')
  }
  return claims
}

module.exports = { createAccessToken, refreshAccessToken, decodeAccessToken }
