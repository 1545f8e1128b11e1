// npm run test:package: the package as users get it. Packs the main package and this
// platform's binary package with `npm pack`, installs both tarballs into a fresh project
// outside the repository, and there checks require, ESM import, the TypeScript types
// (moduleResolution node16 and bundler), sonetel-auth/testing, the command, a real call to
// the local server, the bundlers' recipes of the README, and the error a user gets when
// npm left the binary out.
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
  const testing = ['index.js', 'index.d.ts', 'sonetel-server.js', 'sonetel-api.js', 'certs.js'].map((f) => `testing/${f}`)
  assert.deepEqual(files, ['CHANGELOG.md', 'LICENSE', 'README.md', 'bin/sonetel-auth.js', 'index.d.ts', 'index.js', 'package.json', ...face, ...testing].sort())
  // `napi pre-publish` (prepublishOnly) adds the npm/<platform> packages as optional
  // dependencies at publish time; this platform must be one of them.
  const plat = JSON.parse(fs.readFileSync(path.join(platformPackage().dir, 'package.json'), 'utf8'))
  assert.equal(plat.name, platformPackage().name)
  assert.equal(plat.version, pkg.version)
})

test('the loader knows every published platform by the name of its npm package', () => {
  const { PLATFORMS } = require('../../src/face/binary.js')
  assert.deepEqual([...PLATFORMS].sort(), fs.readdirSync(path.join(root, 'npm')).sort())
  assert.equal(PLATFORMS.length, pkg.napi.targets.length)
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
  assert.equal(node('cjs.cjs', { TOKEN_URL: server.tokenUrl }).trim(), 'demo@example.com')
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
  assert.equal(node('esm.mjs', { TOKEN_URL: server.tokenUrl }).trim(), 'bearer true')
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
  const token = sh(bin, ['token', '--token-url', server.tokenUrl], {
    env: { ...process.env, SONETEL_USERNAME: 'demo@example.com', SONETEL_PASSWORD: 'demo-password' },
    shell: process.platform === 'win32',
  }).trim()
  assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
})

test('sonetel-auth/testing: require and import in an installed project, with types', () => {
  fs.writeFileSync(path.join(project, 'standin.cjs'), `
    const { TokenManager } = require('sonetel-auth')
    const { startSonetel } = require('sonetel-auth/testing')
    startSonetel({ username: 'qa@example.com', password: 'qa-password', accessTokenLifetime: 60 }).then(async (sonetel) => {
      const m = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
      const account = await m.api('/account/{acc_id}')
      console.log(account.email, sonetel.sent('password'), sonetel.apiRequests.length)
      await m.close()
      await sonetel.close()
    })
  `)
  assert.equal(node('standin.cjs').trim(), 'qa@example.com 1 1')
  fs.writeFileSync(path.join(project, 'standin.mjs'), `
    import { createAccessToken } from 'sonetel-auth'
    import { startSonetel } from 'sonetel-auth/testing'
    await using sonetel = await startSonetel()
    sonetel.fault('status', { status: 503, times: 1 })
    const code = await createAccessToken(sonetel.username, sonetel.password, { tokenUrl: sonetel.tokenUrl }).catch((e) => e.code)
    console.log(code)
  `)
  // Node 20 has no `await using` syntax: check the ESM import alone there.
  const major = Number(process.versions.node.split('.')[0])
  if (major >= 24) assert.equal(node('standin.mjs').trim(), 'ERR_SONETEL_HTTP')
  fs.writeFileSync(path.join(project, 'import.mjs'), `import { startSonetel } from 'sonetel-auth/testing'\nconst s = await startSonetel(); console.log(typeof s.tokenUrl); await s.close()`)
  assert.equal(node('import.mjs').trim(), 'string')
  const dir = path.join(project, 'ts-testing')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'app.test.mts'), `
    import { TokenManager } from 'sonetel-auth'
    import { startSonetel, type SonetelStandIn } from 'sonetel-auth/testing'
    const sonetel: SonetelStandIn = await startSonetel({ accessTokenLifetime: 5 })
    const m = new TokenManager({ username: sonetel.username, password: sonetel.password, tokenUrl: sonetel.tokenUrl, apiUrl: sonetel.apiUrl })
    const n: number = sonetel.requests.length
    // @ts-expect-error the fault modes are typed
    sonetel.fault('explode')
    console.log(n, await m.getAccessToken())
  `)
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')] },
    files: ['app.test.mts'],
  }))
  try {
    sh(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', dir])
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
})

// The bundlers' recipes, as the README gives them, on a small app.
const APP = `
  const { createAccessToken, decodeAccessToken, TokenManager } = require('sonetel-auth')
  async function main() {
    const token = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl: process.env.TOKEN_URL })
    const m = new TokenManager({ username: 'demo@example.com', password: 'demo-password', tokenUrl: process.env.TOKEN_URL, token })
    console.log(decodeAccessToken(await m.getAccessToken()).user_name)
    await m.close()
  }
  main().catch((e) => { console.error(e); process.exitCode = 1 })
`
const elsewhere = (name) => {
  const dir = path.join(work, name)
  fs.mkdirSync(dir)
  return dir
}

for (const loader of ['copy', 'file']) {
  test(`esbuild --bundle --platform=node --loader:.node=${loader}: the bundle runs from another directory`, () => {
    fs.writeFileSync(path.join(project, 'bundle-app.js'), APP)
    const out = path.join(project, `dist-esbuild-${loader}`)
    const esbuild = require(path.join(root, 'node_modules', 'esbuild'))
    const build = esbuild.buildSync({ entryPoints: [path.join(project, 'bundle-app.js')], bundle: true, platform: 'node', loader: { '.node': loader }, outdir: out, logLevel: 'silent' })
    assert.deepEqual([...build.errors, ...build.warnings], [])
    const files = fs.readdirSync(out)
    assert.ok(files.some((f) => f.endsWith('.node')), `the binary is beside the bundle: ${files}`)
    // Run where no node_modules can be found: the bundle and its binary alone.
    const there = elsewhere(`run-esbuild-${loader}`)
    for (const f of files) fs.copyFileSync(path.join(out, f), path.join(there, f))
    const ran = sh(process.execPath, [path.join(there, 'bundle-app.js')], { cwd: there, env: { ...process.env, TOKEN_URL: server.tokenUrl, NODE_PATH: '' } })
    assert.equal(ran.trim(), 'demo@example.com')
  })
}

test('esbuild --external:sonetel-auth: the bundle requires the installed package', () => {
  const out = path.join(project, 'dist-esbuild-external', 'app.js')
  const esbuild = require(path.join(root, 'node_modules', 'esbuild'))
  fs.writeFileSync(path.join(project, 'bundle-app.js'), APP)
  const build = esbuild.buildSync({ entryPoints: [path.join(project, 'bundle-app.js')], bundle: true, platform: 'node', external: ['sonetel-auth'], outfile: out, logLevel: 'silent' })
  assert.deepEqual([...build.errors, ...build.warnings], [])
  assert.ok(!fs.readFileSync(out, 'utf8').includes('process.dlopen'), 'the package is not in the bundle')
  assert.equal(sh(process.execPath, [out], { cwd: project, env: { ...process.env, TOKEN_URL: server.tokenUrl } }).trim(), 'demo@example.com')
})

test('webpack 5 with the README\'s externals builds with no warning and runs', async () => {
  fs.writeFileSync(path.join(project, 'bundle-app.js'), APP)
  const webpack = require(path.join(root, 'node_modules', 'webpack'))
  const out = path.join(project, 'dist-webpack')
  const stats = await new Promise((resolve, reject) => webpack({
    mode: 'production', target: 'node', context: project, entry: './bundle-app.js',
    output: { path: out, filename: 'app.js' },
    externals: { 'sonetel-auth': 'commonjs sonetel-auth' },
  }, (err, result) => (err ? reject(err) : resolve(result))))
  const info = stats.toJson({ all: false, warnings: true, errors: true })
  assert.deepEqual(info.errors, [])
  assert.deepEqual(info.warnings, [])
  assert.equal(sh(process.execPath, [path.join(out, 'app.js')], { cwd: project, env: { ...process.env, TOKEN_URL: server.tokenUrl } }).trim(), 'demo@example.com')
})

test('webpack 5 with no configuration for it bundles the package\'s JavaScript with no warning, and the binary loads from node_modules', async () => {
  fs.writeFileSync(path.join(project, 'bundle-app.js'), APP)
  const webpack = require(path.join(root, 'node_modules', 'webpack'))
  const out = path.join(project, 'dist-webpack-inside')
  const stats = await new Promise((resolve, reject) => webpack({
    mode: 'production', target: 'node', context: project, entry: './bundle-app.js', output: { path: out, filename: 'app.js' },
  }, (err, result) => (err ? reject(err) : resolve(result))))
  const info = stats.toJson({ all: false, warnings: true, errors: true })
  assert.deepEqual(info.errors, [])
  assert.deepEqual(info.warnings.map((w) => w.message), [])
  assert.ok(fs.readFileSync(path.join(out, 'app.js'), 'utf8').includes('sonetel-auth needs the package'), 'the face is in the bundle')
  assert.equal(sh(process.execPath, [path.join(out, 'app.js')], { cwd: project, env: { ...process.env, TOKEN_URL: server.tokenUrl } }).trim(), 'demo@example.com')
})

test('rollup 4 with the README\'s external builds with no warning and runs', async () => {
  fs.writeFileSync(path.join(project, 'bundle-app.mjs'), `
    import { createAccessToken, decodeAccessToken } from 'sonetel-auth'
    const token = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl: process.env.TOKEN_URL })
    console.log(decodeAccessToken(token.access_token).user_name)
  `)
  const { rollup } = require(path.join(root, 'node_modules', 'rollup'))
  const warnings = []
  const bundle = await rollup({ input: path.join(project, 'bundle-app.mjs'), external: ['sonetel-auth'], onwarn: (w) => warnings.push(w.message) })
  const file = path.join(project, 'dist-rollup', 'app.mjs')
  await bundle.write({ file, format: 'es' })
  await bundle.close()
  assert.deepEqual(warnings, [])
  assert.equal(sh(process.execPath, [file], { cwd: project, env: { ...process.env, TOKEN_URL: server.tokenUrl } }).trim(), 'demo@example.com')
})

test('Next.js with the README\'s serverExternalPackages, output: standalone and route handler: built without secrets, it answers from another directory', async () => {
  const app = path.join(work, 'next-app')
  fs.mkdirSync(path.join(app, 'app', 'api', 'token'), { recursive: true })
  const version = (name) => JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'next-app', version: '1.0.0', private: true }))
  // The versions our lockfile pins (npm ci has them in npm's cache), beside the packed package.
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `next@${version('next')}`, `react@${version('react')}`, `react-dom@${version('react-dom')}`,
    path.join(work, 'tarballs', tarballs.main.filename), path.join(work, 'tarballs', tarballs.platform.filename)], { cwd: app })
  fs.writeFileSync(path.join(app, 'next.config.js'), "module.exports = { serverExternalPackages: ['sonetel-auth'], output: 'standalone' }\n")
  fs.writeFileSync(path.join(app, 'app', 'layout.js'), 'export default function RootLayout({ children }) { return <html><body>{children}</body></html> }\n')
  fs.writeFileSync(path.join(app, 'app', 'page.js'), 'export default function Page() { return <p>home</p> }\n')
  // The README's route handler: its manager made on first use, from the environment.
  const recipe = /<!-- test: next-route -->\n\s*```js\n([\s\S]*?)```/.exec(fs.readFileSync(path.join(root, 'README.md'), 'utf8'))
  assert.ok(recipe, 'the README has the Next.js route handler')
  fs.writeFileSync(path.join(app, 'app', 'api', 'token', 'route.js'), recipe[1].replace(/^ {2}/gm, ''))
  // No Sonetel variable at build time, as in a CI build: the build must not need them.
  const env = Object.fromEntries(Object.entries({ ...process.env, NEXT_TELEMETRY_DISABLED: '1' }).filter(([k]) => !k.startsWith('SONETEL_')))
  try {
    sh(process.execPath, [path.join(app, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], { cwd: app, env })
  } catch (e) {
    assert.fail(`next build failed:\n${e.stdout}${e.stderr}`)
  }
  // The standalone output alone, elsewhere: file tracing must have copied the binary's package.
  const there = path.join(work, 'next-standalone')
  fs.cpSync(path.join(app, '.next', 'standalone'), there, { recursive: true })
  assert.ok(fs.existsSync(path.join(there, 'node_modules', platformPackage().name, platformPackage().binary)), 'the binary was traced')
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['server.js'], {
    cwd: there,
    env: { ...env, PORT: '0', HOSTNAME: '127.0.0.1', SONETEL_USERNAME: 'demo@example.com', SONETEL_PASSWORD: 'demo-password', SONETEL_TOKEN_URL: server.tokenUrl, SONETEL_API_URL: server.apiUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  try {
    const url = await new Promise((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (d) => {
        out += d
        const found = /http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (found && Number(found[1]) > 0) resolve(found[0])
      })
      child.once('exit', (code) => reject(new Error(`next server exited (${code}): ${out}`)))
    })
    const res = await fetch(`${url}/api/token`)
    assert.equal(res.status, 200)
    assert.equal((await res.json()).email, 'demo@example.com')
  } finally {
    child.kill()
  }
})

test('npm install --omit=optional without the platform package: one actionable error at first use', () => {
  const slim = path.join(work, 'slim')
  fs.mkdirSync(slim)
  fs.writeFileSync(path.join(slim, 'package.json'), JSON.stringify({ name: 'slim', version: '1.0.0', private: true }))
  sh('npm', ['install', '--no-audit', '--no-fund', '--omit=optional', path.join(work, 'tarballs', tarballs.main.filename)], { cwd: slim })
  const plat = platformPackage()
  const platformName = plat.name.replace('sonetel-auth-', '')
  const [os_, cpu, libc] = platformName.split('-')
  // As a user sees it: an uncaught error at require.
  // The binary is opened on first use: an import alone succeeds.
  assert.equal(sh(process.execPath, ['-e', "console.log(typeof require('sonetel-auth').TokenManager)"], { cwd: slim }).trim(), 'function')
  // As a user sees it: an uncaught error at the first use.
  const firstUse = "const { TokenManager } = require('sonetel-auth'); new TokenManager({ username: 'me@example.com', password: 'x' })"
  let uncaught
  try {
    sh(process.execPath, ['-e', firstUse], { cwd: slim })
    assert.fail('a TokenManager was made without a binary')
  } catch (e) {
    uncaught = e.stderr
  }
  const headline = uncaught.split('\n').find((l) => l.startsWith('Error: '))
  assert.equal(headline, `Error: sonetel-auth needs the package ${plat.name} (its native binary for this platform), and it is not installed.`)
  const message = uncaught.slice(uncaught.indexOf(headline), uncaught.indexOf('\n    at '))
  assert.match(message, /npm install --omit=optional/)
  assert.match(message, /another OS or CPU/)
  assert.ok(message.includes(`npm install --include=optional`), message)
  assert.ok(message.includes(`npm install --os=${os_} --cpu=${cpu}${os_ === 'linux' ? ` --libc=${libc === 'musl' ? 'musl' : 'glibc'}` : ''}`), message)
  assert.match(message, /NAPI_RS_NATIVE_LIBRARY_PATH/)
  assert.doesNotMatch(uncaught, /wasm32|wasi|npm has a bug/i)
  // As a program sees it: a code, and every attempt in the cause; an async call rejects.
  const probe = sh(process.execPath, ['-e', `
    const { createAccessToken } = require('sonetel-auth')
    const pending = createAccessToken('me@example.com', 'x')
    pending.catch((e) => {
      console.log(JSON.stringify({ code: e.code, cause: e.cause instanceof AggregateError, attempts: e.cause.errors.map((x) => x.code) }))
    })
  `], { cwd: slim })
  assert.deepEqual(JSON.parse(probe), { code: 'ERR_SONETEL_NO_BINARY', cause: true, attempts: ['MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'] })
  // The documented fix without npm: point at a binary.
  const fixed = sh(process.execPath, ['-e', "const { TokenManager } = require('sonetel-auth'); console.log(typeof new TokenManager({ username: 'me@example.com', password: 'x' }).close)"], {
    cwd: slim, env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: path.join(root, plat.binary) },
  })
  assert.equal(fixed.trim(), 'function')
  // The platform package without its binary (a copy that filtered .node files out): said as such.
  fs.cpSync(plat.dir, path.join(slim, 'node_modules', plat.name), { recursive: true })
  const partial = sh(process.execPath, ['-e', `try { ${firstUse} } catch (e) { console.log(e.code + ' ' + e.message.split('\\n')[0]) }`], { cwd: slim })
  assert.equal(partial.trim(), `ERR_SONETEL_NO_BINARY sonetel-auth found the package ${plat.name} (${path.join(fs.realpathSync(slim), 'node_modules', plat.name)}) but not its binary, ${plat.binary}.`)
})
