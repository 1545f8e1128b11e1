// index.d.ts describes the API exactly. A TypeScript user of it (__test__/types/usage.ts,
// with the misuses it marks @ts-expect-error) and every @example in its JSDoc type-check
// with tsc under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess, with and
// without @types/node, for moduleResolution node16, nodenext and bundler. The package is
// resolved as a user resolves it: through node_modules and its package.json.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
const testingDts = fs.readFileSync(path.join(root, 'testing', 'index.d.ts'), 'utf8')
let work

/** The @example blocks of a declaration file, each with the name of what it documents. */
function examples(text = dts) {
  const found = []
  const re = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(?:export )?(?:declare )?(?:class |function |interface |type |const |readonly )?(?:\w+ )?(\w+)/g
  for (const [, doc, name] of text.matchAll(re)) {
    const body = doc.split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n')
    for (const [, lang, code] of body.matchAll(/@example\s*```(\w*)\n([\s\S]*?)```/g)) found.push({ name, lang, code })
  }
  return found
}

// What the examples take as given, as an app would have it.
const prelude = `import {
  createAccessToken, refreshAccessToken, decodeAccessToken, isSonetelAuthError, TokenManager, SonetelAuthError,
  type AccessToken, type TokenClaims, type TokenManagerEvent, type TokenManagerOptions,
  type TokenRequestOptions, type ApiOptions, type ManagedToken,
} from 'sonetel-auth'
declare const username: string
declare const password: string
declare const url: string
declare const manager: TokenManager
declare const token: AccessToken
declare function save(token: AccessToken): Promise<void>
declare const redis: { set(key: string, value: string): Promise<unknown> }
declare const metrics: { increment(name: string): void }
declare const process: { env: Record<string, string | undefined> }
export type Used = [typeof SonetelAuthError, typeof createAccessToken, typeof refreshAccessToken, typeof decodeAccessToken, typeof isSonetelAuthError,
  AccessToken, TokenClaims, TokenManagerEvent, TokenManagerOptions, TokenRequestOptions, ApiOptions, ManagedToken, SonetelAuthError,
  typeof username, typeof password, typeof url, typeof manager, typeof token, typeof save, typeof redis, typeof metrics, typeof process]
`

// The testing examples' imports are the prelude's (an example is a function body).
const testingPrelude = `import { createAccessToken, TokenManager } from 'sonetel-auth'
import { startSonetel, type SonetelStandIn, type SonetelStandInOptions, type StandInRequest, type StandInFault, type StandInFaultOptions } from 'sonetel-auth/testing'
declare const sonetel: SonetelStandIn
export type Used = [typeof createAccessToken, typeof TokenManager, typeof startSonetel, SonetelStandInOptions, StandInRequest, StandInFault, StandInFaultOptions, typeof sonetel]
`

const strictness = { strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noUnusedLocals: false }
const resolutions = {
  node16: { module: 'node16', moduleResolution: 'node16' },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
  bundler: { module: 'esnext', moduleResolution: 'bundler' },
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-types-'))
  fs.mkdirSync(path.join(work, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(root, path.join(work, 'node_modules', 'sonetel-auth'), 'dir')
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  const blocks = examples()
  const body = blocks.map((e, i) => `// ${e.name}\nexport async function example${i}(): Promise<void> {\n${e.code}}\n`).join('\n')
  fs.writeFileSync(path.join(work, 'examples.ts'), prelude + body)
  const testingBody = examples(testingDts)
    .map((e, i) => `// ${e.name}\nexport async function example${i}(): Promise<void> {\n${e.code.replace(/^import .*$/gm, '')}}\n`).join('\n')
  fs.writeFileSync(path.join(work, 'testing-examples.ts'), testingPrelude + testingBody)
  fs.copyFileSync(path.join(root, '__test__', 'types', 'usage.ts'), path.join(work, 'usage.ts'))
})
after(() => fs.rmSync(work, { recursive: true, force: true }))

function check(name, compilerOptions, withNode) {
  const typesDir = path.join(work, 'node_modules', '@types', 'node')
  fs.rmSync(typesDir, { force: true, recursive: true })
  if (withNode) fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), typesDir, 'dir')
  const config = path.join(work, `tsconfig.${name}.json`)
  fs.writeFileSync(config, JSON.stringify({
    compilerOptions: { ...strictness, ...compilerOptions, target: 'ES2022', noEmit: true, skipLibCheck: false, types: withNode ? ['node'] : [] },
    files: ['examples.ts', 'testing-examples.ts', 'usage.ts'],
  }))
  try {
    execFileSync(process.execPath, [tsc, '-p', config], { stdio: 'pipe', cwd: work })
  } catch (e) {
    assert.fail(`tsc (${name}) failed:\n${e.stdout}${e.stderr}`)
  }
}

test('every exported declaration has JSDoc with an example, in index.d.ts and testing/index.d.ts', () => {
  const missing = []
  const re = /(\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*)?export (?:declare )?(?:class|function|interface|const) (\w+)/g
  for (const text of [dts, testingDts]) {
    for (const [, doc, name] of text.matchAll(re)) {
      if (!doc?.includes('@example')) missing.push(name)
    }
  }
  assert.deepEqual(missing, [])
  assert.ok(examples().length >= 25, `${examples().length} examples found`)
  assert.ok(examples(testingDts).length >= 5, `${examples(testingDts).length} testing examples found`)
})

test('no test-only export and no Node-only type in the public types', () => {
  const declarations = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
  assert.doesNotMatch(declarations, /__panicForTesting/)
  assert.doesNotMatch(declarations, /\bBuffer\b/)
})

/** tsc --checkJs: the JavaScript module `js` is assignable to the declared module `specifier`, and exports nothing else. */
function checkImplements(name, specifier, js) {
  fs.writeFileSync(path.join(work, `${name}.ts`), `import type * as Declared from '${specifier}'
import * as actual from ${JSON.stringify(js)}
export const matches: typeof Declared = actual
type Extra = Exclude<keyof typeof actual, keyof typeof Declared>
export const noExtra: [Extra] extends [never] ? true : false = true
`)
  const config = path.join(work, `tsconfig.${name}.json`)
  fs.writeFileSync(config, JSON.stringify({
    compilerOptions: {
      strict: true, noImplicitAny: false, useUnknownInCatchVariables: false, allowJs: true, checkJs: true, noEmit: true,
      target: 'ES2022', lib: ['es2024', 'esnext.disposable'], ...resolutions.nodenext, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
    },
    files: [`${name}.ts`],
  }))
  try {
    execFileSync(process.execPath, [tsc, '-p', config], { stdio: 'pipe', cwd: work })
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
}

test('the JavaScript face implements index.d.ts: every declared export, with compatible types, and no other (tsc --checkJs)', () => {
  checkImplements('face', 'sonetel-auth', path.join(root, 'src', 'face', 'index.js'))
})

test('sonetel-auth/testing implements testing/index.d.ts: every declared export, with compatible types, and no other (tsc --checkJs)', () => {
  checkImplements('testing-face', 'sonetel-auth/testing', path.join(root, 'testing', 'index.js'))
})

test('await using compiles with a TokenManager (TypeScript 5.2+, lib esnext.disposable), with and without @types/node', () => {
  fs.writeFileSync(path.join(work, 'dispose.ts'), `import { TokenManager } from 'sonetel-auth'
export async function once(username: string, password: string): Promise<string> {
  await using manager = new TokenManager({ username, password })
  return manager.getAccessToken()
}
`)
  for (const withNode of [true, false]) {
    const typesDir = path.join(work, 'node_modules', '@types', 'node')
    fs.rmSync(typesDir, { force: true, recursive: true })
    if (withNode) fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), typesDir, 'dir')
    const config = path.join(work, `tsconfig.dispose-${withNode}.json`)
    fs.writeFileSync(config, JSON.stringify({
      compilerOptions: { ...strictness, ...resolutions.nodenext, target: 'ES2022', lib: ['es2022', 'esnext.disposable', 'dom'], noEmit: true, types: withNode ? ['node'] : [] },
      files: ['dispose.ts'],
    }))
    try {
      execFileSync(process.execPath, [tsc, '-p', config], { stdio: 'pipe', cwd: work })
    } catch (e) {
      assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
    }
  }
})

for (const [name, options] of Object.entries(resolutions)) {
  for (const withNode of [true, false]) {
    test(`the examples and a user of the API type-check: moduleResolution ${name}, ${withNode ? 'with' : 'without'} @types/node`, () => {
      check(`${name}-${withNode ? 'node' : 'plain'}`, options, withNode)
    })
  }
}
