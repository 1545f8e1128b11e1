// Child processes whose end is the thing under test: run one to its end and judge how it
// ended. Used where a crash, an abort or a hang must fail a test, not the test runner.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'

/**
 * This process's environment for a child, without what would make a child `node` report
 * to this test runner (NODE_TEST_CONTEXT) or print debug output, and without `drop`.
 */
export function childEnv(drop = []) {
  const env = { ...process.env }
  for (const name of ['NODE_TEST_CONTEXT', 'NODE_DEBUG', ...drop]) delete env[name]
  return env
}

/** Runs `cmd args`; resolves with { status, signal, stdout, stderr }, killing it after `timeoutMs`. */
export function outcome(cmd, args, { cwd, env = process.env, input, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => { stdout += d })
    p.stderr.on('data', (d) => { stderr += d })
    if (input !== undefined) p.stdin.end(input)
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })
}

/** The child exited by itself, with status 0 and no signal; returns its last line as JSON. */
export function clean(run, what) {
  assert.equal(run.signal, null, `${what}: killed by ${run.signal}\n${run.stderr.slice(-2000)}`)
  assert.equal(run.status, 0, `${what}: exit status ${run.status}\n${run.stdout.slice(-1000)}\n${run.stderr.slice(-2000)}`)
  return JSON.parse(run.stdout.trim().split('\n').pop())
}
