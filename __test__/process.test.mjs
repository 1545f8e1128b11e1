// Whole-process promises: a panic does not abort Node, secrets reach neither stdout nor
// stderr, and a process that has finished its calls exits by itself.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const run = (name, env = {}) => spawnSync(process.execPath, [fixture(name)], {
  encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000,
})

test('a Rust panic rejects with ERR_SONETEL_INTERNAL instead of aborting the process', () => {
  const child = run('panic.cjs', { RUST_BACKTRACE: '0' })
  assert.equal(child.status, 0, child.stderr)
  assert.match(child.stdout, /sync: ERR_SONETEL_INTERNAL/)
  assert.match(child.stdout, /async: ERR_SONETEL_INTERNAL/)
  assert.match(child.stdout, /alive/)
})

test('no password or refresh token in anything written to stdout or stderr', () => {
  const password = 'Pr0be-Secret-' + Math.random().toString(36).slice(2)
  const child = run('leak-probe.cjs', { PROBE_PASSWORD: password })
  assert.equal(child.status, 0, child.stderr)
  assert.match(child.stdout, /probe done/)
  const refresh = Buffer.from(/REFRESH_TOKEN_IN_USE ([0-9a-f]+)/.exec(child.stdout)[1], 'hex').toString()
  const output = child.stdout + child.stderr
  assert.ok(output.split('\n').length > 50, 'the probe logged its errors')
  assert.ok(!output.includes(password), 'password leaked')
  assert.ok(!output.includes(refresh), 'refresh token leaked')
})

test('works from worker threads, which can come and go', () => {
  const child = run('workers.cjs')
  assert.equal(child.status, 0, child.stderr)
  const out = JSON.parse(child.stdout)
  assert.deepEqual(out.results, Array(4).fill({ shared: 1, direct: 50 }))
  assert.equal(out.main, 'bearer')
})
