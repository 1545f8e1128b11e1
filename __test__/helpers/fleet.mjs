// A fleet of real processes, each with a TokenManager (fixtures/fleet-worker.cjs), driven
// over IPC: shared by the fleet test files.
import assert from 'node:assert/strict'
import { fork, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { USER, PASSWORD } from './common.mjs'

const worker = fileURLToPath(new URL('../fixtures/fleet-worker.cjs', import.meta.url))

/** libfaketime, or a message naming the Debian package when it is not installed. */
export const FAKETIME_LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1']
  .find((p) => fs.existsSync(p))
export const faketimeMissing = FAKETIME_LIB || !spawnSync('faketime', ['--version']).error ? null : 'needs faketime (Debian package faketime)'

/** The environment of a process whose wall clock is `seconds` off (monotonic time is not). */
export const skewedClock = (seconds) => ({
  LD_PRELOAD: FAKETIME_LIB,
  FAKETIME: `${seconds >= 0 ? '+' : ''}${seconds}s`,
  FAKETIME_DONT_FAKE_MONOTONIC: '1',
  FAKETIME_NO_CACHE: '1',
})

/** The claims of a JWT. */
export const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

/**
 * Forks `n` processes, each with a TokenManager on `options` (over USER and the stand-in's
 * token URL); `env` is added to each one's environment.
 */
export async function startFleet(server, n, options, env = {}) {
  const procs = []
  let next = 0
  const spawnOne = (extra = {}, extraEnv = env) => new Promise((resolve, reject) => {
    const child = fork(worker, [], {
      env: { ...process.env, ...extraEnv, FLEET_OPTIONS: JSON.stringify({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, retryDelayMs: 1, ...options, ...extra }) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    child.stderrText = ''
    child.stderr.on('data', (d) => { child.stderrText += d })
    child.once('message', () => { procs.push(child); resolve(child) })
    child.once('exit', (code) => reject(new Error(`a fleet process exited (${code}): ${child.stderrText}`)))
  })
  await Promise.all(Array.from({ length: n }, () => spawnOne()))
  const ask = (child, message) => new Promise((resolve, reject) => {
    const id = ++next
    const onExit = () => reject(new Error('the process ended without answering'))
    const onMessage = (m) => {
      if (m.id !== id) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (m.error) reject(Object.assign(new Error(m.error.message), m.error))
      else resolve(m)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.send({ ...message, id })
  })
  return {
    procs,
    ask,
    /** Adds a process (with more options, another environment). */
    add: spawnOne,
    /** Every process asks for `n` tokens at once; resolves with all the tokens. */
    async get(n = 1) {
      const replies = await Promise.all(procs.map((p) => ask(p, { cmd: 'get', n })))
      return replies.flatMap((r) => r.tokens)
    },
    invalidate: (stale) => Promise.all(procs.map((p) => ask(p, { cmd: 'invalidate', stale }))),
    events: async () => (await Promise.all(procs.map((p) => ask(p, { cmd: 'events' })))).map((r) => r.events),
    /**
     * The first process starts a token request that the server never answers; the others
     * ask while it holds the lock; then it is killed. Resolves with the others' tokens.
     */
    async killLockHolder({ waitMs = 0 } = {}) {
      server.fault('hang', { times: 1 })
      const [holder, ...others] = procs
      const held = ask(holder, { cmd: 'get' }).catch(() => 'killed')
      while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 20))
      const waiting = others.map((p) => ask(p, { cmd: 'get' }))
      await new Promise((r) => setTimeout(r, waitMs))
      holder.kill('SIGKILL')
      const tokens = (await Promise.all(waiting)).flatMap((r) => r.tokens)
      assert.equal(await held, 'killed')
      return tokens
    },
    async close() {
      for (const p of procs) p.kill('SIGKILL')
    },
  }
}

/** Resolves once `check()` is true, polling; rejects after `ms` with `what`. */
export async function until(check, what, ms = 30_000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
