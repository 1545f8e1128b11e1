// The package inside users' test runners, as real projects: Jest 29 with fake timers
// (modern and legacy, enabled in the config or by the test), Jest's --detectOpenHandles,
// `await using` under ts-jest, and Vitest 4 with vi.useFakeTimers() in its default pool
// and in vmThreads. Each gets tokens and API answers from the stand-in, and the runner
// must exit by itself: a run that hangs is killed and fails. (npm run test:runtimes runs
// this file on Node.js 22 and 24 too.)
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = path.join(root, '__test__', 'runners')
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-runners-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

/** A project with the package (and `more` of our devDependencies) in its node_modules, and `files` copied in. */
function project(name, files, more = []) {
  const dir = path.join(work, name)
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true })
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'sonetel-auth'), 'dir')
  for (const dep of more) fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir')
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }))
  for (const [to, from] of Object.entries(files)) {
    if (typeof from === 'string') fs.copyFileSync(path.join(fixtures, from), path.join(dir, to))
    else fs.writeFileSync(path.join(dir, to), JSON.stringify(from))
  }
  return dir
}

/** Runs a test runner to its end; one that does not exit by itself within two minutes is killed. */
function run(args, cwd, env = {}) {
  const { NODE_TEST_CONTEXT, ...inherited } = process.env
  const r = spawnSync(process.execPath, args, {
    cwd, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL',
    env: { ...inherited, NO_PROXY: '127.0.0.1,localhost', CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0', ...env },
  })
  const out = `${r.stdout}\n${r.stderr}`
  assert.equal(r.signal, null, `the runner did not exit by itself (killed after 120 s):\n${out}`)
  assert.equal(r.status, 0, out)
  return out
}

const jest = (dir, ...args) => [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--runInBand', '--rootDir', dir, ...args]

describe('Jest 29', () => {
  const fakeTimers = [
    ['modern fake timers enabled globally', { fakeTimers: { enableGlobally: true } }, {}],
    ['legacy fake timers enabled globally', { fakeTimers: { enableGlobally: true, legacyFakeTimers: true } }, {}],
    ['jest.useFakeTimers() in the test', {}, { FAKE_TIMERS: 'modern' }],
    ['jest.useFakeTimers({ legacyFakeTimers: true }) in the test', {}, { FAKE_TIMERS: 'legacy' }],
  ]
  for (const [name, config, env] of fakeTimers) {
    test(`${name}: a token and an API answer, and Jest exits by itself`, () => {
      const dir = project(`jest-${name.replace(/\W+/g, '-')}`, { 'sonetel.test.js': 'fake-timers.jest.js', 'jest.config.json': config })
      const out = run(jest(dir, '--config', path.join(dir, 'jest.config.json')), dir, env)
      assert.match(out, /Tests:\s+1 passed, 1 total/)
      assert.doesNotMatch(out, /did not exit/)
    })
  }

  test('--detectOpenHandles reports nothing for an import', () => {
    const dir = project('jest-open-handles', { 'import.test.js': 'import-only.jest.js' })
    const out = run(jest(dir, '--detectOpenHandles'), dir)
    assert.match(out, /Tests:\s+1 passed, 1 total/)
    assert.doesNotMatch(out, /open handle/i)
  })

  test('await using under ts-jest, with the README\'s setup line for realms without Symbol.asyncDispose', () => {
    const config = {
      setupFiles: ['<rootDir>/dispose-setup.js'],
      transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false, tsconfig: { target: 'ES2022', module: 'commonjs', lib: ['ES2022', 'ESNext.Disposable'], esModuleInterop: true } }] },
      testMatch: ['**/*.test.ts'],
    }
    const dir = project('jest-await-using', { 'dispose.test.ts': 'dispose.jest.ts', 'dispose-setup.js': 'dispose-setup.jest.js', 'jest.config.json': config }, ['ts-jest', 'typescript'])
    const out = run(jest(dir, '--config', path.join(dir, 'jest.config.json')), dir)
    assert.match(out, /Tests:\s+1 passed, 1 total/)
  })
})

describe('Vitest 4', () => {
  for (const pool of ['forks', 'vmThreads']) {
    test(`pool ${pool}: vi.useFakeTimers() and await using, and Vitest exits by itself`, () => {
      const dir = project(`vitest-${pool}`, { 'runner.test.ts': 'runner.vitest.ts' }, ['vitest'])
      const out = run([path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir, '--pool', pool], dir)
      assert.match(out, /Tests\s+2 passed \(2\)/)
    })
  }
})
