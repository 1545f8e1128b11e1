// The sonetel-auth command: each subcommand, each exit code, and no secret printed.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { addon, startSonetel, USER, PASSWORD } from './helpers/common.mjs'

const cli = fileURLToPath(new URL('../bin/sonetel-auth.js', import.meta.url))
let server
let url

before(async () => {
  server = await startSonetel()
  url = server.tokenUrl
})
after(() => server.close())

const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SONETEL_')))

/** Runs the command asynchronously (the local server lives in this process). */
function run(args, { env = {}, input } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...clean, ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.once('close', (status) => resolve({ status, stdout, stderr }))
    child.stdin.end(input ?? '')
  })
}

const login = { SONETEL_USERNAME: USER, SONETEL_PASSWORD: PASSWORD }

function assertClean(r, secrets = [PASSWORD]) {
  for (const s of secrets) {
    assert.ok(!r.stdout.includes(s), 'secret on stdout')
    assert.ok(!r.stderr.includes(s), 'secret on stderr')
  }
  assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace')
}

test('--help, -h, help and --version exit 0, on standard output', async () => {
  for (const args of [['--help'], ['-h'], ['help'], ['token', '--help']]) {
    const help = await run(args)
    assert.equal(help.status, 0, args.join(' '))
    assert.match(help.stdout, /Usage: sonetel-auth <command>/)
    assert.equal(help.stderr, '')
  }
  const version = await run(['--version'])
  assert.equal(version.status, 0)
  assert.match(version.stdout, /^sonetel-auth \d+\.\d+\.\d+\n$/)
})

test('bad usage exits 2 with one clear line', async () => {
  for (const args of [[], ['frobnicate'], ['token', '--bogus'], ['token', '--password', PASSWORD], ['token', '--timeout', 'soon'], ['token', '--timeout', '0x10'], ['--version', 'extra']]) {
    const r = await run(args, { env: login })
    assert.equal(r.status, 2, args.join(' '))
    assert.match(r.stderr, /^sonetel-auth: [^\n]+\n$/, 'one line')
    assertClean(r)
  }
  const noPassword = await run(['token', '--token-url', url], { env: { SONETEL_USERNAME: USER } })
  assert.equal(noPassword.status, 2)
  assert.match(noPassword.stderr, /no password/)
})

test('token prints only the access token', async () => {
  server.reset()
  const r = await run(['token', '--token-url', url], { env: login })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '')
  const token = r.stdout.trim()
  assert.equal(r.stdout, token + '\n')
  assert.equal(addon.decodeAccessToken(token).user_name, USER)
  assert.equal(server.requests[0].fields.password, PASSWORD)
  assertClean(r)
})

test('token --json prints the whole response', async () => {
  const r = await run(['token', '--json', `--token-url=${url}`], { env: login })
  assert.equal(r.status, 0, r.stderr)
  const token = JSON.parse(r.stdout)
  assert.equal(token.token_type, 'bearer')
  assert.ok(token.refresh_token)
})

test('token --password-stdin reads the password from standard input', async () => {
  server.reset()
  const r = await run(['token', '--password-stdin', '--username', USER, '--token-url', url], { input: PASSWORD + '\n' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(server.requests[0].fields.password, PASSWORD)
  assertClean(r)
})

test('SONETEL_TOKEN_URL is honoured; --token-url wins over it', async () => {
  server.reset()
  const fromEnv = await run(['token'], { env: { ...login, SONETEL_TOKEN_URL: url } })
  assert.equal(fromEnv.status, 0, fromEnv.stderr)
  assert.equal(server.requests.length, 1)
  const flag = await run(['token', '--token-url', url], { env: { ...login, SONETEL_TOKEN_URL: 'http://127.0.0.1:1/nowhere' } })
  assert.equal(flag.status, 0, flag.stderr)
})

test('errors name the flag or variable the user set, not the library option', async () => {
  const flag = await run(['token', '--token-url', 'http://example.com/token'], { env: login })
  assert.equal(flag.status, 2)
  assert.match(flag.stderr, /^sonetel-auth: --token-url uses plain http/)
  const env = await run(['token'], { env: { ...login, SONETEL_TOKEN_URL: 'ftp://127.0.0.1/token' } })
  assert.equal(env.status, 2)
  assert.match(env.stderr, /^sonetel-auth: SONETEL_TOKEN_URL must use https/)
  const user = await run(['token', '--username', 'x'.repeat(9000), '--token-url', url], { env: { SONETEL_PASSWORD: PASSWORD } })
  assert.match(user.stderr, /^sonetel-auth: --username is longer than/)
  const stdinPassword = await run(['token', '--password-stdin', '--username', USER, '--token-url', url], { input: '\n' })
  assert.match(stdinPassword.stderr, /^sonetel-auth: the password on standard input must not be empty/)
  for (const r of [flag, env, user, stdinPassword]) assert.doesNotMatch(r.stderr, /options\./)
})

test('an unknown flag gets the closest known one, exit 2', async () => {
  for (const [arg, flag, hint] of [['--pasword', '--pasword', '--password'], ['--tokenurl', '--tokenurl', '--token-url'], ['--timout=5', '--timout', '--timeout'], ['--JSON', '--JSON', '--json'],
    // A flag typed short: the flag it starts, not the closest by edits (--json for --user).
    ['--user', '--user', '--username'], ['--token', '--token', '--token-url'], ['--ver', '--ver', '--version']]) {
    const r = await run(['token', arg], { env: login })
    assert.equal(r.status, 2, arg)
    assert.equal(r.stderr, `sonetel-auth: unknown option '${flag}' (did you mean ${hint}?) (see 'sonetel-auth --help')\n`)
  }
  // Nothing typed after '=' or in place of a command is printed: it may be a password.
  for (const args of [['token', '--=hunter22x'], ['token', '--pasword=hunter22x'], ['hunter22x'], ['—password=hunter22x', 'token'],
    ['hunterpassword'], ['token', '--passwd:hunter22x'], ['token', '--password:hunter22x']]) {
    const r = await run(args, { env: login })
    assert.equal(r.status, 2, args.join(' '))
    assert.ok(!r.stderr.includes('hunter22x'), r.stderr)
  }
  assert.match((await run(['tokn'], { env: login })).stderr, /unknown command tokn \(did you mean token\?\)/)
  const far = await run(['token', '--frobnicate'], { env: login })
  assert.equal(far.status, 2)
  assert.equal(far.stderr, "sonetel-auth: unknown option '--frobnicate' (see 'sonetel-auth --help')\n")
})

test('an unknown user is refused without the e-mail address in the message', async () => {
  const who = 'nobody.here+x@example.com'
  const r = await run(['token', '--token-url', url], { env: { SONETEL_USERNAME: who, SONETEL_PASSWORD: PASSWORD } })
  assert.equal(r.status, 3)
  assert.equal(r.stderr, 'sonetel-auth: Sonetel refused the grant (401 unauthorized): User with name [e-mail] not found (ERR_SONETEL_AUTH)\n')
})

test('refused credentials exit 3', async () => {
  const r = await run(['token', '--token-url', url], { env: { SONETEL_USERNAME: USER, SONETEL_PASSWORD: 'wrong-' + PASSWORD } })
  assert.equal(r.status, 3)
  assert.match(r.stderr, /^sonetel-auth: Sonetel refused the grant \(400 invalid_grant\): Bad credentials \(ERR_SONETEL_AUTH\)\n$/)
  assertClean(r, ['wrong-' + PASSWORD])
})

test('a rate limit (429, even OAuth-shaped) exits 4, try later, not 3', async () => {
  server.fault('rate-limit', { times: 1, retryAfter: 30 })
  const r = await run(['token', '--token-url', url], { env: login })
  assert.equal(r.status, 4)
  assert.match(r.stderr, /try later \(429 too_many_requests\)/)
  assertClean(r)
})

test('network errors and timeouts exit 4', async () => {
  const refused = await run(['token', '--token-url', 'http://127.0.0.1:1/token'], { env: login })
  assert.equal(refused.status, 4)
  assert.match(refused.stderr, /ERR_SONETEL_NETWORK/)
  server.fault('hang', { times: 1 })
  const slow = await run(['token', '--token-url', url, '--timeout', '300'], { env: login })
  assert.equal(slow.status, 4)
  assert.match(slow.stderr, /ERR_SONETEL_TIMEOUT/)
  assertClean(slow)
})

test('unexpected answers exit 5', async () => {
  server.fault('status', { times: 1, status: 503 })
  const busy = await run(['token', '--token-url', url], { env: login })
  assert.equal(busy.status, 5)
  assert.match(busy.stderr, /HTTP 503 \(ERR_SONETEL_HTTP\)/)
  server.fault('body', { times: 1, body: 'not json' })
  const broken = await run(['token', '--token-url', url], { env: login })
  assert.equal(broken.status, 5)
  assert.match(broken.stderr, /ERR_SONETEL_RESPONSE/)
})

test('refresh takes the refresh token from the environment or standard input', async () => {
  const first = await addon.createAccessToken(USER, PASSWORD, { tokenUrl: url })
  const fromEnv = await run(['refresh', '--token-url', url], { env: { SONETEL_REFRESH_TOKEN: first.refresh_token } })
  assert.equal(fromEnv.status, 0, fromEnv.stderr)
  assert.ok(addon.decodeAccessToken(fromEnv.stdout.trim()).exp)
  const fromStdin = await run(['refresh', '--json', '--token-url', url], { input: first.refresh_token + '\n' })
  assert.equal(fromStdin.status, 0, fromStdin.stderr)
  assert.ok(JSON.parse(fromStdin.stdout).refresh_token)

  server.revokeRefreshTokens()
  const revoked = await run(['refresh', '--token-url', url], { env: { SONETEL_REFRESH_TOKEN: first.refresh_token } })
  assert.equal(revoked.status, 3)
  assertClean(revoked, [first.refresh_token])
  const missing = await run(['refresh', '--token-url', url])
  assert.equal(missing.status, 2)
})

test('decode prints the claims as JSON on standard output, when it expires on standard error', async () => {
  const { access_token: token } = await addon.createAccessToken(USER, PASSWORD, { tokenUrl: url })
  const r = await run(['decode', token])
  assert.equal(r.status, 0, r.stderr)
  // What `sonetel-auth decode "$T" | jq -r .exp` reads: JSON and nothing else.
  assert.equal(JSON.parse(r.stdout).user_name, USER)
  assert.match(r.stderr, /^expires in 23 hours 5\d minutes \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\)\n$/)
  const json = await run(['decode', '--json', token])
  assert.deepEqual(JSON.parse(json.stdout), JSON.parse(r.stdout))
  assert.equal(json.stderr, '', '--json: data only')
  const piped = await run(['decode'], { input: token })
  assert.equal(piped.status, 0)
  const bad = await run(['decode', 'not-a-token'])
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /^sonetel-auth: not a JWT: .* \(ERR_INVALID_ARG_VALUE\)\n$/)
  // An exp no Date can hold is said, not a crash.
  const far = `eyJhbGciOiJub25lIn0.${Buffer.from('{"exp":1e300}').toString('base64url')}.x`
  const farOut = await run(['decode', far])
  assert.equal(farOut.status, 0, farOut.stderr)
  assert.match(farOut.stderr, /exp claim \(1e\+300\) that is no date/)
})

test('on a terminal, token asks for the password without echoing it', { skip: spawnSync('script', ['--version']).error && 'no script(1) here' }, async () => {
  server.reset()
  // script(1) gives the command a pseudo-terminal; the password is typed into it.
  const command = `${process.execPath} ${cli} token --token-url ${url}`
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...clean, SONETEL_USERNAME: USER } })
  let output = ''
  child.stdout.on('data', (d) => {
    output += d
    if (output.includes('Sonetel password: ') && !child.typed) {
      child.typed = true
      child.stdin.write(PASSWORD + '\r')
    }
  })
  const status = await new Promise((resolve) => child.once('close', resolve))
  assert.equal(status, 0, output)
  assert.equal(server.requests[0].fields.password, PASSWORD)
  assert.ok(!output.includes(PASSWORD), 'the password was echoed')
  assert.match(output, /eyJ[\w-]+\.[\w-]+\.[\w-]+/)
})
