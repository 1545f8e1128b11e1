'use strict'
// createAccessToken, refreshAccessToken and decodeAccessToken.

const { binding, channel, call, ABORTED } = require('./native.js')
const { fromText, abortError, argTypeError, argValueError } = require('./errors.js')
const options = require('./options.js')
const signals = require('./signals.js')

const { parse, stringify } = JSON
const { captureStackTrace } = Error
const fromBase64 = (text) => Buffer.from(text, 'base64url').toString('utf8')
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/

/**
 * Sends one grant and resolves with the token endpoint's JSON, parsed. `site` is the
 * entry point, left out of an error's stack (the caller's frames stay).
 */
async function grant(username, secret, raw, site) {
  const fields = options.readOptions(raw, 'options', options.REQUEST_OPTIONS)
  const config = stringify(options.requestConfig(fields, 'options'))
  const signal = fields === undefined ? undefined : options.signal(fields, 'options')
  if (signal !== undefined && signals.aborted(signal)) throw abortError(signals.reason(signal))
  const text = await call(
    (id) => binding.requestToken(channel, id, config, username, secret),
    signals.watcher(signal, 'options'),
  )
  if (text === ABORTED) throw abortError(signals.reason(signal))
  if (text.charCodeAt(0) === 118) return parse(text.slice(1))
  throw fromText(text, signal && signals.reason(signal), site)
}

/** @type {typeof import('../../index').createAccessToken} */
async function createAccessToken(username, password, opts) {
  const user = options.text(username, 'username')
  const secret = options.secretBytes(password, 'password')
  try {
    return await grant(user, secret, opts, createAccessToken)
  } catch (e) {
    throw restack(e, createAccessToken)
  }
}

/** @type {typeof import('../../index').refreshAccessToken} */
async function refreshAccessToken(refreshToken, opts) {
  const token = options.text(refreshToken, 'refreshToken', options.MAX_TOKEN)
  try {
    return await grant(undefined, token, opts, refreshAccessToken)
  } catch (e) {
    throw restack(e, refreshAccessToken)
  }
}

/**
 * An error made below the entry point, given the stack of this moment: the entry point
 * resumed after its await, under the caller's async frames.
 */
function restack(error, site) {
  if (captureStackTrace && typeof error === 'object' && error !== null) {
    try {
      captureStackTrace(error, site)
    } catch {
      // A frozen error keeps the stack it has.
    }
  }
  return error
}

/** @type {typeof import('../../index').decodeAccessToken} */
function decodeAccessToken(token) {
  if (typeof token !== 'string') throw argTypeError(`token must be a string, received ${options.typeName(token)}`)
  const refuse = (why) => argValueError(`not a JWT: ${why}`)
  if (token.length > options.MAX_TOKEN) throw refuse('longer than 64 KiB')
  const first = token.indexOf('.')
  const second = first < 0 ? -1 : token.indexOf('.', first + 1)
  if (second < 0 || token.indexOf('.', second + 1) >= 0) throw refuse('it does not have three parts')
  const payload = token.slice(first + 1, second)
  if (payload.length === 0 || !BASE64URL.test(payload)) throw refuse('the payload is not base64url')
  let claims
  try {
    claims = parse(fromBase64(payload))
  } catch {
    throw refuse('the payload is not JSON')
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw refuse('the payload is not a JSON object')
  }
  return claims
}

module.exports = { createAccessToken, refreshAccessToken, decodeAccessToken, restack }
