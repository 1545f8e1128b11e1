// The README's "Testing your code" examples, run as a user would run them: each in a
// project of its own where `sonetel-auth` is the package (and `sonetel-auth/testing` its
// export), under Jest 29, Vitest 4 and node:test.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-readme-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

/** The code block after `<!-- test: runner -->`. */
function example(runner) {
  const match = new RegExp(`<!-- test: ${runner} -->\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme)
  assert.ok(match, `the README has a ${runner} example`)
  return match[1]
}

/** A project with the package (and `more` of our devDependencies) in its node_modules. */
function project(name, more = []) {
  const dir = path.join(work, name)
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true })
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'sonetel-auth'), 'dir')
  for (const dep of more) fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir')
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }))
  return dir
}

function run(args, cwd) {
  // Without NODE_TEST_CONTEXT: the example's own node --test must report as it does for a user.
  const { NODE_TEST_CONTEXT, ...env } = process.env
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...env, NO_PROXY: '127.0.0.1,localhost', CI: 'true', NO_COLOR: '1' } })
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
  return r
}

test('the Jest example passes under Jest 29', () => {
  const dir = project('readme-jest')
  fs.writeFileSync(path.join(dir, 'call.test.js'), example('jest'))
  const r = run([path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--runInBand', '--rootDir', dir], dir)
  assert.match(r.stderr, /Tests:\s+1 passed, 1 total/)
})

test('the Vitest example passes under Vitest 4', () => {
  const dir = project('readme-vitest', ['vitest'])
  fs.writeFileSync(path.join(dir, 'auth.test.mjs'), example('vitest'))
  const r = run([path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir], dir)
  assert.match(r.stdout, /Tests\s+1 passed \(1\)/)
})

test('the node:test example (expiry with a short lifetime) passes', () => {
  const dir = project('readme-node')
  fs.writeFileSync(path.join(dir, 'expiry.test.mjs'), example('node'))
  const r = run(['--test', '--test-reporter=tap', 'expiry.test.mjs'], dir)
  assert.match(r.stdout, /# pass 1/)
})
