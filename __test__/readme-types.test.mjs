// Every JavaScript and TypeScript snippet of the README, pasted into a project as a user
// would, type-checks with tsc under `strict`: TypeScript blocks as TypeScript, JavaScript
// blocks as JavaScript with checkJs (so `string | undefined` where a string is needed, a
// `claims` that may be null, a field read off `unknown` all fail). A snippet with neither
// import nor require is a fragment: it gets the package's exports and the few names it
// takes as given (below).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-readme-types-'))
after(() => fs.rmSync(work, { recursive: true, force: true }))

/** Every ```js and ```ts block, with the line it starts on. */
function snippets() {
  const found = []
  for (const match of readme.matchAll(/^( *)```(js|ts)\n([\s\S]*?)^\1```$/gm)) {
    const [, indent, lang, code] = match
    const line = readme.slice(0, match.index).split('\n').length
    found.push({ lang, line, code: code.split('\n').map((l) => l.slice(indent.length)).join('\n') })
  }
  return found
}

// What a fragment takes as given, as an app would have it.
const FRAGMENT_IMPORTS = `import { createAccessToken, refreshAccessToken, decodeAccessToken, isSonetelAuthError, SonetelAuthError, TokenManager } from 'sonetel-auth'
import { startSonetel } from 'sonetel-auth/testing'
`
const GIVEN = `import type { AccessToken, TokenManager } from 'sonetel-auth'
declare global {
  const username: string
  const password: string
  const user: string
  const manager: TokenManager
  const tokens: TokenManager
  const token: AccessToken
  function request(url: string, accessToken: string): Promise<Response>
  // Jest's globals, as @types/jest declares them (the README's Jest example uses them).
  function beforeAll(fn: () => unknown): void
  function afterAll(fn: () => unknown): void
  function test(name: string, fn: () => Promise<void> | void): void
  const expect: {
    (value: unknown): { toBe(v: unknown): void, toEqual(v: unknown): void, toMatch(v: RegExp): void }
    any(type: unknown): unknown
  }
}
export {}
`

test('every README snippet type-checks under strict TypeScript (JavaScript ones with checkJs)', () => {
  const all = snippets()
  assert.ok(all.length >= 15, `${all.length} snippets found`)
  fs.mkdirSync(path.join(work, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(root, path.join(work, 'node_modules', 'sonetel-auth'), 'dir')
  fs.symlinkSync(path.join(root, 'node_modules', 'vitest'), path.join(work, 'node_modules', 'vitest'), 'dir')
  fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), path.join(work, 'node_modules', '@types', 'node'), 'dir')
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'app', private: true }))
  fs.writeFileSync(path.join(work, 'given.d.ts'), GIVEN)
  const files = ['given.d.ts']
  for (const { lang, line, code } of all) {
    const commonjs = /\brequire\(/.test(code) && !/^import /m.test(code)
    const module = commonjs || /^import /m.test(code)
    const ext = lang === 'ts' ? 'mts' : commonjs ? 'cjs' : 'mjs'
    const name = `readme-${line}.${ext}`
    const text = `${lang === 'js' ? '// @ts-check\n' : ''}${module ? '' : FRAGMENT_IMPORTS}${code}${module ? '' : '\nexport {}\n'}`
    fs.writeFileSync(path.join(work, name), text)
    files.push(name)
  }
  fs.writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, allowJs: true, checkJs: true, noEmit: true, target: 'ES2022', lib: ['es2023', 'esnext.disposable', 'dom'],
      module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], skipLibCheck: true,
    },
    files,
  }))
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe', cwd: work })
  } catch (e) {
    // readme-<line>.<ext>(row,col): each error names the README line its snippet starts on.
    assert.fail(`tsc failed on README snippets (file names give the README line):\n${e.stdout}${e.stderr}`)
  }
})
