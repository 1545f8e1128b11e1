// Shared by the test files: the addon, the local server, and assertions about errors.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { inspect } from 'node:util'

const require = createRequire(import.meta.url)
// The tests talk to local servers; a proxy from the environment must not get in between.
process.env.NO_PROXY = [process.env.NO_PROXY, 'localhost', '127.0.0.1', '::1'].filter(Boolean).join(',')
export const addon = require('../../index.js')
// The stand-ins as users get them: through the package's own `sonetel-auth/testing` export.
export const { startSonetel } = require('sonetel-auth/testing')
/** Switches on the API stand-in's paths for our own tests (`/test/echo`, `/test/hang`, `/test/redirect`). */
export const TEST_HOOKS = { [Symbol.for('sonetel-auth.testing.hooks')]: true }
export const { startProxy } = require('../../testing/proxy.js')

export const USER = 'demo@example.com'
export const PASSWORD = 'demo-password'

/** Every text a user could see of an error: message, stack, inspect, JSON. */
export function errorTexts(err) {
  return [String(err?.message), String(err?.stack), inspect(err, { depth: Infinity }), JSON.stringify(err) ?? '']
}

/** Asserts no secret (nor a long piece of one) shows in any text of `err`. */
export function assertNoSecret(err, secrets) {
  for (const text of errorTexts(err)) {
    for (const secret of secrets.filter(Boolean)) {
      assert.ok(!text.includes(secret), `a secret leaked into: ${text.slice(0, 300)}`)
    }
  }
}

/**
 * Awaits a promise that must reject, and checks its code, class and properties.
 * Returns the error and how long it took to settle.
 */
export async function rejection(promise, code, props = {}) {
  assert.ok(promise instanceof Promise, 'the call must return a promise')
  const started = performance.now()
  let err
  await promise.then(
    (value) => assert.fail(`expected a rejection with ${code}, got ${inspect(value)}`),
    (e) => { err = e },
  )
  const ms = performance.now() - started
  assert.ok(err instanceof Error, 'rejects with an Error')
  assert.equal(err.code, code, `code of: ${err.message}`)
  if (code.startsWith('ERR_INVALID_ARG')) assert.ok(err instanceof TypeError, 'argument errors are TypeErrors')
  for (const [key, value] of Object.entries(props)) {
    if (value instanceof RegExp) assert.match(String(err[key]), value, key)
    else assert.deepEqual(err[key], value, key)
  }
  return { err, ms }
}

/**
 * What `promise` resolves with, or `'still waiting'` after `ms`: for a call that must not
 * hang, with a bound far beyond what it needs (no timer is left behind).
 */
export async function within(promise, ms) {
  let timer
  const late = new Promise((resolve) => { timer = setTimeout(resolve, ms, 'still waiting') })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The call must not throw synchronously; returns its promise. */
export function call(fn, ...args) {
  let result
  assert.doesNotThrow(() => { result = fn(...args) }, 'must not throw synchronously')
  return result
}

/**
 * A token as an app would have stored it: a real refresh token, and an access token (a
 * JWT the stand-in made the same way) with `secondsLeft` to live (negative: expired) after
 * an hour's life. Clears the server's request log, so tests count only their own requests.
 */
export async function storedToken(server, tokenUrl, secondsLeft) {
  const real = await addon.createAccessToken(USER, PASSWORD, { tokenUrl })
  const now = Math.floor(Date.now() / 1000)
  const [header, payload, signature] = real.access_token.split('.')
  const claims = { ...JSON.parse(Buffer.from(payload, 'base64url')), iat: now - 3600, exp: now + secondsLeft }
  server.reset()
  return { ...real, access_token: `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}` }
}
