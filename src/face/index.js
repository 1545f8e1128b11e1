'use strict'
// The public API, as index.d.ts declares it.

const { createAccessToken, refreshAccessToken, decodeAccessToken } = require('./token.js')
const { TokenManager } = require('./manager.js')
const errors = require('./errors.js')

// Declared as a constructor whose instances are the union of failures told apart by
// `code` (so `instanceof` narrows by code), which a JSDoc class cannot state itself.
const SonetelAuthError = /** @type {typeof import('../../index').SonetelAuthError} */ (/** @type {unknown} */ (errors.SonetelAuthError))
const { isSonetelAuthError } = errors

module.exports = {
  createAccessToken,
  refreshAccessToken,
  decodeAccessToken,
  TokenManager,
  SonetelAuthError,
  isSonetelAuthError,
}
