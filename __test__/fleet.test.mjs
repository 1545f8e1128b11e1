// One token for a whole fleet: TokenManagers in separate processes sharing their token
// through a real Redis (Debian's redis-server, started here on a free port) or a file.
// Without redis-server the Redis tests skip, naming the package; .ci/run installs it.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { after, before, beforeEach, describe, test } from 'node:test'
import { startSonetel, within, USER, PASSWORD } from './helpers/common.mjs'
import { startFleet, until } from './helpers/fleet.mjs'

const require = createRequire(import.meta.url)
const { startRedis, redisMissing } = require('../testing/redis.js')
const skipRedis = redisMissing() ?? false

let server
const OTHER_USER = 'other@example.com'
before(async () => { server = await startSonetel({ users: { [OTHER_USER]: 'other-password' } }) })
after(() => server.close())
beforeEach(() => {
  server.reset()
  server.accessTokenLifetime = 86400
})

const fleet = (n, options) => startFleet(server, n, options)

const grants = () => ({ password: server.sent('password'), refresh_token: server.sent('refresh_token') })

describe('Redis', { skip: skipRedis }, () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(() => redis?.close())
  beforeEach(() => redis.command('FLUSHALL'))

  test('8 processes, 50 concurrent calls each, an empty store: exactly 1 password grant, 400 same tokens', async () => {
    const f = await fleet(8, { store: redis.url })
    try {
      const tokens = await f.get(50)
      assert.equal(tokens.length, 400)
      assert.equal(new Set(tokens).size, 1)
      assert.deepEqual(grants(), { password: 1, refresh_token: 0 })
      const types = (await f.events()).flat().map((e) => e.type)
      assert.equal(types.filter((t) => t === 'token').length, 1, 'one process fetched')
      assert.equal(types.filter((t) => t === 'shared').length, 7, 'seven took it from the store')
    } finally {
      await f.close()
    }
  })

  test('the same fleet when the token enters its refresh margin: exactly 1 refresh grant', async () => {
    server.accessTokenLifetime = 6 // seconds; the margin is then 3 s
    const f = await fleet(8, { store: redis.url })
    try {
      const first = new Set(await f.get(50))
      assert.equal(first.size, 1)
      server.reset()
      await new Promise((r) => setTimeout(r, 3500)) // into the margin (waiting longer is safe)
      const second = await f.get(50)
      assert.equal(new Set(second).size, 1)
      assert.ok(!first.has(second[0]), 'a new token')
      assert.deepEqual(grants(), { password: 0, refresh_token: 1 })
    } finally {
      await f.close()
    }
  })

  test('invalidate(stale) from 8 processes at once: 1 new token request', async () => {
    const f = await fleet(8, { store: redis.url })
    try {
      const [stale] = await f.get()
      server.reset()
      await f.invalidate(stale)
      const fresh = await f.get(10)
      assert.equal(new Set(fresh).size, 1)
      assert.notEqual(fresh[0], stale)
      assert.deepEqual(grants(), { password: 0, refresh_token: 1 })
    } finally {
      await f.close()
    }
  })

  test('the lock holder killed mid-request: another process takes over after the lock lapses; none hangs', async () => {
    // A lease of 1 s, not renewed once its holder is dead.
    const f = await fleet(3, { store: redis.url, storeTimeoutMs: 500, storeLeaseMs: 1000 })
    try {
      const tokens = await f.killLockHolder({ waitMs: 100 }) // the others are waiting on the lock
      assert.equal(new Set(tokens).size, 1)
      assert.equal(server.sent('password'), 2, 'the killed request and one more')
      const events = (await Promise.all(f.procs.slice(1).map((p) => f.ask(p, { cmd: 'events' })))).flatMap((r) => r.events)
      assert.ok(!events.some((e) => e.type === 'store-unavailable'), 'taken over through the lock, not by giving up on the store')
    } finally {
      await f.close()
    }
  })

  test('Redis stopped mid-run: every process keeps getting tokens on its own; started again: they share again', async () => {
    const f = await fleet(4, { store: redis.url, storeTimeoutMs: 300 })
    try {
      assert.equal(new Set(await f.get(5)).size, 1)
      await redis.stop()
      server.reset()
      await f.invalidate()
      const alone = await f.get(5)
      assert.equal(alone.length, 20)
      assert.equal(server.sent('refresh_token') + server.sent('password'), 4, 'each process on its own')
      await redis.start()
      // Each process reconnects after its back-off (250 ms after one failure, at most 5 s).
      // Each round starts from an empty store: a process whose own token differs from the
      // stored one rightly takes the stored one while another replaces it, and such rounds
      // could go on; from an empty store, one fetch serves all the processes that share.
      await until(async () => {
        server.reset()
        await redis.command('FLUSHALL')
        await f.invalidate()
        const shared = await f.get(5)
        return new Set(shared).size === 1 && server.sent('refresh_token') + server.sent('password') === 1
      }, 'the fleet sharing again')
      for (const events of await f.events()) {
        const types = events.map((e) => e.type)
        const down = types.indexOf('store-unavailable')
        assert.ok(down >= 0, 'the outage is an event')
        assert.ok(types.indexOf('store-available') > down, 'and so is the recovery')
        assert.match(events[down].message, /Redis/)
      }
    } finally {
      await f.close()
    }
  })

  test('storeSecret: what Redis holds shows no token; a process with another secret treats it as foreign', async () => {
    const f = await fleet(2, { store: redis.url, storeKey: 'fleet-sealed', storeSecret: 'a passphrase of the fleet' })
    try {
      const [token] = await f.get()
      const raw = await redis.command('GET', 'fleet-sealed')
      assert.match(raw, /^sonetel-auth\.sealed\.v1\./)
      for (const part of token.split('.')) assert.ok(!raw.includes(part), 'no piece of the token in the store')
      // (Not "eyJ": ciphertext in base64 holds any three letters now and then.)
      assert.ok(!raw.includes('refresh_token'))
      server.reset()
      const other = await fleet(1, { store: redis.url, storeKey: 'fleet-sealed', storeSecret: 'another passphrase!' })
      try {
        const [own] = await other.get()
        assert.notEqual(own, token, 'not taken from a value it cannot open')
        assert.equal(server.sent('password'), 1)
        assert.notEqual(await redis.command('GET', 'fleet-sealed'), raw, 'and overwritten')
      } finally {
        await other.close()
      }
    } finally {
      await f.close()
    }
  })

  test('a corrupted or foreign value under the key is ignored and overwritten', async () => {
    await redis.command('SET', 'fleet-foreign', '{"not":"ours"}')
    const f = await fleet(2, { store: redis.url, storeKey: 'fleet-foreign' })
    try {
      assert.equal(new Set(await f.get(3)).size, 1)
      assert.equal(server.sent('password'), 1)
      assert.match(await redis.command('GET', 'fleet-foreign'), /"access_token"/)
      const ttl = await redis.command('PTTL', 'fleet-foreign')
      assert.ok(ttl > 29 * 86400_000, 'the key lives as long as the refresh token')
    } finally {
      await f.close()
    }
  })
})

describe('Redis over TLS with a password', { skip: skipRedis }, () => {
  let redis
  const REDIS_PASSWORD = 'R3dis-Pa55-' + Math.random().toString(36).slice(2)
  before(async () => { redis = await startRedis({ tls: true, password: REDIS_PASSWORD }) })
  after(() => redis?.close())

  test('rediss:// with the test CA and requirepass: shared', async () => {
    const f = await fleet(3, { store: redis.url, ca: redis.ca })
    try {
      assert.equal(new Set(await f.get(5)).size, 1)
      assert.equal(server.sent('password'), 1)
    } finally {
      await f.close()
    }
  })

  test('a wrong Redis password: each process fetches on its own and says so; no password in any event or error', async () => {
    const wrong = redis.url.replace(encodeURIComponent(REDIS_PASSWORD), 'not-the-password')
    const f = await fleet(2, { store: wrong, ca: redis.ca })
    try {
      const tokens = await f.get(3)
      assert.equal(tokens.length, 6)
      assert.equal(server.sent('password'), 2)
      const events = await f.events()
      for (const list of events) {
        const down = list.find((e) => e.type === 'store-unavailable')
        assert.ok(down, 'the fallback is an event')
        assert.match(down.message, /Redis refused the login/)
      }
      const text = JSON.stringify(events) + f.procs.map((p) => p.stderrText).join('')
      for (const secret of [REDIS_PASSWORD, 'not-the-password', PASSWORD, tokens[0]]) assert.ok(!text.includes(secret), 'a secret leaked')
    } finally {
      await f.close()
    }
  })

  test('a rediss:// store whose certificate is not trusted is not used', async () => {
    const f = await fleet(1, { store: redis.url })
    try {
      assert.equal((await f.get()).length, 1)
      const [events] = await f.events()
      assert.ok(events.some((e) => e.type === 'store-unavailable'))
    } finally {
      await f.close()
    }
  })
})

describe('a file store', () => {
  let dir
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-fleet-')) })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  test('8 processes: 1 password grant; the file and its lock are mode 0600', async () => {
    const file = path.join(dir, 'token.json')
    const f = await fleet(8, { store: `file://${file}` })
    try {
      const tokens = await f.get(20)
      assert.equal(new Set(tokens).size, 1)
      assert.equal(server.sent('password'), 1)
      if (process.platform !== 'win32') {
        assert.equal(fs.statSync(file).mode & 0o777, 0o600)
        assert.equal(fs.statSync(`${file}.lock`).mode & 0o777, 0o600)
      }
      assert.match(fs.readFileSync(file, 'utf8'), /"access_token"/)
      assert.deepEqual(fs.readdirSync(dir).sort(), ['token.json', 'token.json.lock'], 'no temporary file left')
    } finally {
      await f.close()
    }
  })

  test('the lock holder killed mid-request: the others recover at once (the kernel drops its lock)', async () => {
    const file = path.join(dir, 'killed.json')
    const f = await fleet(3, { store: `file://${file}`, timeoutMs: 60_000, retries: 0 })
    try {
      const tokens = await f.killLockHolder()
      assert.equal(new Set(tokens).size, 1)
      assert.equal(server.sent('password'), 2)
    } finally {
      await f.close()
    }
  })

  test('two accounts given the same file never take each other\'s token', async () => {
    const { TokenManager } = require('../index.js')
    const store = `file://${path.join(dir, 'shared.json')}`
    const mine = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store })
    const theirs = new TokenManager({ username: OTHER_USER, password: 'other-password', tokenUrl: server.tokenUrl, store })
    assert.equal((await mine.getToken()).claims.user_name, USER)
    assert.equal((await theirs.getToken()).claims.user_name, OTHER_USER)
    assert.equal(server.sent('password'), 2)
  })

  test('a stored token that no Authorization header can carry is ignored and overwritten', async () => {
    const { TokenManager } = require('../index.js')
    const file = path.join(dir, 'planted.json')
    // Exactly what a manager writes, but for a token with a line break in it.
    const owner = `sonetel-auth:v1:${crypto.createHash('sha256').update(`${server.tokenUrl}\0${USER}`).digest().subarray(0, 12).toString('hex')}`
    const exp = Math.floor(Date.now() / 1000) + 86400
    const planted = `e30.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.x\r\nX-Injected: 1`
    fs.writeFileSync(file, JSON.stringify({ v: 1, owner, skew: 0, token: { access_token: planted } }))
    const events = []
    const m = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store: `file://${file}`, onEvent: (e) => events.push(e) })
    const token = await m.getAccessToken()
    assert.notEqual(token, planted)
    assert.equal(server.sent('password'), 1)
    assert.ok(!events.some((e) => e.type === 'shared'))
    assert.ok(!fs.readFileSync(file, 'utf8').includes('X-Injected'), 'overwritten')
  })

  test('a lock holder alive but stuck (a flock(1) that never lets go, never renews) holds the others for one lease, then is remembered', { skip: spawnSync('flock', ['--version']).error && 'needs flock(1) (Debian package util-linux)' }, async () => {
    const { TokenManager } = require('../index.js')
    const file = path.join(dir, 'stuck.json')
    fs.writeFileSync(`${file}.lock`, '', { mode: 0o600 })
    const holder = spawn('flock', ['--close', `${file}.lock`, '-c', 'echo locked; exec sleep 600'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
    try {
      await new Promise((resolve) => holder.stdout.once('data', resolve))
      const events = []
      const m = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store: `file://${file}`, storeTimeoutMs: 500, storeLeaseMs: 1000, onEvent: (e) => events.push(e) })
      assert.notEqual(await within(m.getAccessToken(), 60_000), 'still waiting')
      assert.equal(server.sent('password'), 1)
      const stuck = events.filter((e) => e.type === 'store-degraded')
      assert.deepEqual(stuck.map((e) => e.reason), ['lock-stuck'])
      assert.match(stuck[0].message, /stopped renewing/)
      assert.ok(!events.some((e) => e.type === 'store-unavailable'), 'the store itself works')
      // Remembered: the next fetch does not wait for that lock again, and says nothing new.
      m.invalidate()
      await m.getAccessToken()
      assert.equal(events.filter((e) => e.type === 'store-degraded').length, 1)
      assert.equal(server.sent('password') + server.sent('refresh_token'), 2)
    } finally {
      process.kill(-holder.pid, 'SIGKILL') // flock and its sleep
    }
  })

  test('bad store URLs are ERR_INVALID_ARG_VALUE from the constructor', async () => {
    const { TokenManager } = require('../index.js')
    for (const store of ['memcached://127.0.0.1', 'file://relative/path', 'redis://', 'nonsense', `file://${dir}/`, 'file:///tmp/a%00b']) {
      assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store }), { code: 'ERR_INVALID_ARG_VALUE' }, store)
    }
    assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, storeKey: 'x' }), { code: 'ERR_INVALID_ARG_VALUE', message: /needs options\.store/ })
    assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, storeLeaseMs: 5000 }), { code: 'ERR_INVALID_ARG_VALUE', message: /needs options\.store/ })
    for (const storeLeaseMs of [999, 600_001, 0, NaN, Infinity]) {
      assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store: 'redis://127.0.0.1:1', storeLeaseMs }), { code: 'ERR_INVALID_ARG_VALUE', message: /storeLeaseMs/ }, String(storeLeaseMs))
    }
    assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store: 'redis://127.0.0.1:1', storeLeaseMs: '5000' }), { code: 'ERR_INVALID_ARG_TYPE' })
    // A renewal must fit in a third of the lease: at least two store timeouts.
    assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store: 'redis://127.0.0.1:1', storeTimeoutMs: 3000, storeLeaseMs: 5000 }), { code: 'ERR_INVALID_ARG_VALUE', message: /storeLeaseMs must be at least twice options\.storeTimeoutMs/ })
    new TokenManager({ username: USER, password: PASSWORD, store: 'redis://127.0.0.1:1', storeTimeoutMs: 3000 }).close() // the default lease grows with it
    assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store: 'redis://127.0.0.1:1', storeSecret: new Uint8Array(5) }), { code: 'ERR_INVALID_ARG_VALUE' })
  })
})
