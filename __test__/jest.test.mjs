// A real Jest 29 project with Jest's defaults (testEnvironment: node, so every object the
// tests make comes from a vm context): __test__/jest/sonetel.test.js, against the stand-ins.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))

test('Jest 29 (default testEnvironment: node) can use the package: options, managers, errors, fake timers', () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-jest-'))
  try {
    fs.mkdirSync(path.join(project, 'node_modules'))
    fs.symlinkSync(root, path.join(project, 'node_modules', 'sonetel-auth'), 'dir')
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true }))
    fs.copyFileSync(path.join(root, '__test__', 'jest', 'sonetel.jest.js'), path.join(project, 'sonetel.test.js'))
    const run = spawnSync(process.execPath, [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--runInBand', '--rootDir', project], {
      cwd: project, encoding: 'utf8', env: { ...process.env, NO_PROXY: '127.0.0.1,localhost' }, timeout: 240_000,
    })
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`)
    assert.match(run.stderr, /Tests:\s+4 passed, 4 total/)
  } finally {
    fs.rmSync(project, { recursive: true, force: true })
  }
})
