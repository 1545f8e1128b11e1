// npm run test:package: the package as users get it. Packs the main package and this
// platform's binary package with `npm pack`, installs both tarballs into a fresh project
// outside the repository, and there checks require, ESM import, the TypeScript types
// (moduleResolution node16 and bundler), the command, and a real call to the local server.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'
import { installPacked, platformPackage, root, sh } from '../helpers/packed.mjs'

const require = createRequire(import.meta.url)
// The server runs in its own process: the checks below block this one while they run.
const { spawnSonetelServer } = require('../../testing/server-process.js')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-package-'))
let project
let server
let tarballs

const node = (file, env = {}) => sh(process.execPath, [file], { cwd: project, env: { ...process.env, ...env } })

before(async () => {
  server = await spawnSonetelServer()
  ;({ project, tarballs } = installPacked(work))
})

after(async () => {
  await server?.close()
  fs.rmSync(work, { recursive: true, force: true })
})

test('the main package ships only what a user needs', () => {
  const files = tarballs.main.files.map((f) => f.path).sort()
  const face = fs.readdirSync(path.join(root, 'src', 'face')).map((f) => `src/face/${f}`)
  assert.deepEqual(files, ['CHANGELOG.md', 'LICENSE', 'README.md', 'bin/sonetel-auth.js', 'index.d.ts', 'index.js', 'package.json', ...face].sort())
  // `napi pre-publish` (prepublishOnly) adds the npm/<platform> packages as optional
  // dependencies at publish time; this platform must be one of them.
  const plat = JSON.parse(fs.readFileSync(path.join(platformPackage().dir, 'package.json'), 'utf8'))
  assert.equal(plat.name, platformPackage().name)
  assert.equal(plat.version, pkg.version)
})

test('the platform package holds the binary', () => {
  const files = tarballs.platform.files.map((f) => f.path)
  assert.ok(files.includes(platformPackage().binary))
})

test('require() works in an installed project and reaches the server', () => {
  fs.writeFileSync(path.join(project, 'cjs.cjs'), `
    const { createAccessToken, decodeAccessToken } = require('sonetel-auth')
    createAccessToken('demo@example.com', 'demo-password', { tokenUrl: process.env.TOKEN_URL })
      .then((t) => console.log(decodeAccessToken(t.access_token).user_name))
  `)
  assert.equal(node('cjs.cjs', { TOKEN_URL: server.url }).trim(), 'demo@example.com')
  // It is the installed copy that answered, not the repository's.
  const resolved = sh(process.execPath, ['-p', "require.resolve('sonetel-auth')"], { cwd: project }).trim()
  assert.ok(resolved.startsWith(project), resolved)
})

test('ESM import { createAccessToken } from "sonetel-auth" works', () => {
  fs.writeFileSync(path.join(project, 'esm.mjs'), `
    import { createAccessToken, TokenManager } from 'sonetel-auth'
    const t = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl: process.env.TOKEN_URL })
    const m = new TokenManager({ username: 'demo@example.com', password: 'demo-password', tokenUrl: process.env.TOKEN_URL, token: t })
    console.log(t.token_type, (await m.getAccessToken()) === t.access_token)
  `)
  assert.equal(node('esm.mjs', { TOKEN_URL: server.url }).trim(), 'bearer true')
})

for (const [moduleKind, resolution] of [['node16', 'node16'], ['esnext', 'bundler']]) {
  test(`TypeScript type-checks with moduleResolution ${resolution}`, () => {
    const dir = path.join(project, `ts-${resolution}`)
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, 'app.mts'), `
      import { createAccessToken, decodeAccessToken, TokenManager, type AccessToken, type TokenClaims } from 'sonetel-auth'
      const token: AccessToken = await createAccessToken('me@example.com', 'secret', { timeoutMs: 5000 })
      const claims: TokenClaims = decodeAccessToken(token.access_token)
      const m = new TokenManager({ username: 'me@example.com', password: new TextEncoder().encode('secret') })
      const header: string = await m.authorizationHeader()
      // @ts-expect-error the options are typed
      await createAccessToken('me@example.com', 'secret', { timeoutMs: 'soon' })
      console.log(claims.exp, header)
    `)
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'ES2022', module: moduleKind, moduleResolution: resolution,
        types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')],
      },
      files: ['app.mts'],
    }))
    try {
      sh(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', dir])
    } catch (e) {
      assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
    }
  })
}

test('the sonetel-auth command is installed', () => {
  const bin = path.join(project, 'node_modules', '.bin', process.platform === 'win32' ? 'sonetel-auth.cmd' : 'sonetel-auth')
  assert.equal(sh(bin, ['--version'], { shell: process.platform === 'win32' }).trim(), `sonetel-auth ${pkg.version}`)
  const token = sh(bin, ['token', '--token-url', server.url], {
    env: { ...process.env, SONETEL_USERNAME: 'demo@example.com', SONETEL_PASSWORD: 'demo-password' },
    shell: process.platform === 'win32',
  }).trim()
  assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
})
