// npm run test:memcheck: the worker, teardown, abort and hostile-input scenarios under
// valgrind memcheck. Fails on any invalid read or write, use of an uninitialised value, or
// a scenario that does not end cleanly. Needs Debian's `valgrind` (.ci/run installs it).
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const hasValgrind = !spawnSync('valgrind', ['--version']).error

function memcheck(name, args = [], env = {}) {
  return new Promise((resolve) => {
    const p = spawn('valgrind', [
      '--tool=memcheck', '--error-exitcode=99', '--track-origins=no', '--leak-check=no',
      '--trace-children=no', `--suppressions=${fileURLToPath(new URL('./memcheck.supp', import.meta.url))}`,
      '-q', process.execPath, fixture(name), ...args,
    ], { env: { ...process.env, WATCHDOG_MS: '500000', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => { stdout += d })
    p.stderr.on('data', (d) => { stderr += d })
    p.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }))
  })
}

function assertClean(run, what) {
  const report = run.stderr.split('\n').filter((l) => l.startsWith('==')).join('\n')
  assert.doesNotMatch(report, /Invalid (read|write|free)|uninitialised|Mismatched free|Source and destination overlap/, `${what}: memcheck found:\n${report.slice(0, 4000)}`)
  assert.equal(run.signal, null, `${what}: killed by ${run.signal}\n${report.slice(0, 2000)}`)
  assert.equal(run.status, 0, `${what}: exit status ${run.status}\n${run.stdout.slice(-500)}\n${run.stderr.slice(-3000)}`)
}

const scenarios = [
  ['workers ending every way, main thread using the addon', 'worker-churn.cjs', [], { WORKERS: '10', PARALLEL: '2', BUSY: '1', MAIN_LOADS: '1' }],
  ['workers ending every way, addon only in workers', 'worker-churn.cjs', [], { WORKERS: '5', PARALLEL: '2', BUSY: '1', MAIN_LOADS: '0' }],
  ['the addon loaded only in workers, one after the other', 'workers-only.cjs', [], { CALL: '1', WORKERS: '3' }],
  ['process.exit() with calls in flight', 'teardown.cjs', ['exit']],
  ['500 calls aborted at random moments', 'teardown.cjs', ['abort']],
  ['throwing setters on Object.prototype', 'hostile.cjs', ['throwing-setters']],
  ['a frozen Error.prototype', 'hostile.cjs', ['frozen-error-prototype']],
  ['Proxies, throwing getters, throwing toJSON', 'hostile.cjs', ['proxies']],
  ['cyclic and deep stored tokens', 'hostile.cjs', ['cyclic-and-deep-token']],
  ['a polluted Object.prototype', 'hostile.cjs', ['polluted-onToken']],
]

for (const [label, name, args, env] of scenarios) {
  test(`memcheck: ${label}`, { skip: !hasValgrind && 'valgrind is not installed (Debian package valgrind)' }, async () => {
    assertClean(await memcheck(name, args, env), label)
  })
}
