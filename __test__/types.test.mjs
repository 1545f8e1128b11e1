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

test('every export in index.d.ts has JSDoc with an example', async () => {
  const { readFileSync } = await import('node:fs')
  const dts = readFileSync(`${root}index.d.ts`, 'utf8')
  const missing = []
  const re = /(\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*)?export (?:declare )?(?:class|function|interface|const) (\w+)/g
  for (const [, doc, name] of dts.matchAll(re)) {
    // __napiBindingTarget is written by the napi-rs loader generator, not by us.
    if (name !== '__napiBindingTarget' && !doc?.includes('@example')) missing.push(name)
  }
  assert.deepEqual(missing, [])
})
