// index.d.ts describes the API: a TypeScript file using it type-checks with tsc, and
// the misuses marked @ts-expect-error in it are caught.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))

test('a TypeScript user of the API type-checks against index.d.ts', () => {
  try {
    execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}__test__/types`], { stdio: 'pipe' })
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
})
