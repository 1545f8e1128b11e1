// The fleet store as teams deploy it: clocks that disagree (Debian's faketime), Redis as
// teams configure it (an ACL user without scripting rights, an idle timeout, a password
// changed and restored, eviction), lock holders killed or stopped, many managers in one
// process, a store someone else can write to, and an API that refuses every token.
// Real parts only: redis-server on a free loopback port, real processes, the stand-ins.
// Without redis-server or faketime the tests that need them skip, naming the package;
// .ci/run installs both.
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { after, before, beforeEach, describe, test } from 'node:test'
import { startSonetel, within, rejection, USER, PASSWORD } from './helpers/common.mjs'
import { startFleet, until, skewedClock, faketimeMissing, claimsOf } from './helpers/fleet.mjs'

const require = createRequire(import.meta.url)
const { startRedis, redisMissing } = require('../testing/redis.js')
const { TokenManager, createAccessToken } = require('../index.js')
const skipRedis = redisMissing() ?? false
const OTHER_USER = 'other@example.com'

let server
before(async () => { server = await startSonetel({ users: { [OTHER_USER]: 'other-password' } }) })
after(() => server.close())
beforeEach(() => {
  server.reset()
  server.accessTokenLifetime = 86400
  server.rotateRefreshTokens = false
  server.refuseApiTokens = false
})

const grants = () => server.sent('password') + server.sent('refresh_token')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const types = (events) => events.map((e) => e.type)
const gate = () => {
  let open
  const promise = new Promise((resolve) => { open = resolve })
  return { promise, open }
}
/** The owner hash a manager writes with its token (see src/core/store/mod.rs). */
const ownerOf = (user) => `sonetel-auth:v1:${require('node:crypto').createHash('sha256').update(`${server.tokenUrl}\0${user}`).digest().subarray(0, 12).toString('hex')}`
const manager = (options = {}) => {
  const events = []
  const m = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, onEvent: (e) => events.push(e), ...options })
  m.events = events
  return m
}
/** Runs a Node.js script in a child process (the stand-ins answer it from this one). */
const runScript = (script) => new Promise((resolve) => {
  execFile(process.execPath, ['-e', script], { env: { ...process.env, TOKEN_URL: server.tokenUrl }, encoding: 'utf8', timeout: 60_000 },
    (error, stdout, stderr) => resolve({ status: error ? (error.code ?? error.signal) : 0, stdout, stderr }))
})
const degraded = (events) => events.filter((e) => e.type === 'store-degraded').map((e) => e.reason)

describe('clocks that disagree', { skip: skipRedis || faketimeMissing || false }, () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(() => redis?.close())
  beforeEach(() => redis.command('FLUSHALL'))

  for (const [first, second] of [[600, -600], [-600, 600]]) {
    test(`a writer ${first > 0 ? 'fast' : 'slow'} by 10 minutes logs in first, one ${second > 0 ? 'fast' : 'slow'} next: no process serves a token past its exp`, async () => {
      server.accessTokenLifetime = 4
      const f = await startFleet(server, 1, { store: redis.url }, skewedClock(first))
      try {
        await f.get()
        await f.add({}, skewedClock(second))
        await f.add({}, {})
        await f.add({}, {})
        const firstRound = await f.get()
        const exp = Math.max(...firstRound.map((t) => claimsOf(t).exp))
        while (Date.now() / 1000 < exp + 0.5) await sleep(100) // past exp (later is as good)
        for (let round = 0; round < 3; round++) {
          // One process at a time, each token checked by this (true) clock as it arrives.
          for (const [i, p] of f.procs.entries()) {
            const { tokens } = await f.ask(p, { cmd: 'get', n: 3 })
            const now = Date.now() / 1000
            for (const t of tokens) assert.ok(claimsOf(t).exp > now, `process ${i} (clock ${[first, second, 0, 0][i]} s) served a token ${(now - claimsOf(t).exp).toFixed(1)} s past its exp`)
          }
          await sleep(300)
        }
      } finally {
        await f.close()
      }
    })
  }

  test('a reader 8 s slow takes a token already 5 s old: Redis TIME shows its clock is behind; it never serves the token past exp', async () => {
    server.accessTokenLifetime = 10
    const f = await startFleet(server, 1, { store: redis.url, refreshMarginMs: 1000 })
    try {
      const [token] = await f.get()
      const { iat, exp } = claimsOf(token)
      while (Date.now() / 1000 < iat + 5) await sleep(100)
      const reader = await f.add({}, skewedClock(-8))
      assert.equal((await f.ask(reader, { cmd: 'get' })).tokens[0], token, 'taken from the store')
      while (Date.now() / 1000 < exp + 0.5) await sleep(100)
      const [later] = (await f.ask(reader, { cmd: 'get' })).tokens
      assert.ok(claimsOf(later).exp > Date.now() / 1000, `served ${(Date.now() / 1000 - claimsOf(later).exp).toFixed(1)} s past its exp`)
    } finally {
      await f.close()
    }
  })

  test('the wall clock stepped back 10 minutes (NTP, a VM restored): a received token still expires on time', async () => {
    server.accessTokenLifetime = 6
    const clockFile = path.join(os.tmpdir(), `sonetel-auth-clock-${process.pid}`)
    fs.writeFileSync(clockFile, '+0s')
    const { FAKETIME, ...env } = skewedClock(0)
    const f = await startFleet(server, 1, {}, { ...env, FAKETIME_TIMESTAMP_FILE: clockFile })
    try {
      const [token] = await f.get()
      fs.writeFileSync(clockFile, '-600s')
      while (Date.now() / 1000 < claimsOf(token).exp + 0.5) await sleep(100)
      const [later] = (await f.get())
      assert.notEqual(later, token, 'the expired token was served')
      assert.ok(claimsOf(later).exp > Date.now() / 1000)
    } finally {
      await f.close()
      fs.rmSync(clockFile, { force: true })
    }
  })

  test('Redis\'s clock 10 hours ahead of a right one: no token is taken as younger than it is, and an event says why none is shared', async () => {
    server.accessTokenLifetime = 3600
    // Between the reader and Redis: TIME answers 10 hours late.
    const proxy = net.createServer((client) => {
      const upstream = net.connect(redis.port, '127.0.0.1')
      client.pipe(upstream)
      upstream.on('data', (d) => client.write(Buffer.from(d.toString('latin1')
        .replace(/\*2\r\n\$10\r\n(\d{10})\r\n/g, (_, secs) => `*2\r\n$10\r\n${Number(secs) + 36_000}\r\n`), 'latin1')))
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        a.on('error', () => b.destroy())
        a.on('close', () => b.destroy())
      }
    })
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const writer = manager({ store: redis.url, storeKey: 'ahead' })
      await writer.getAccessToken()
      const reader = manager({ store: `redis://127.0.0.1:${proxy.address().port}`, storeKey: 'ahead' })
      await reader.getAccessToken()
      assert.equal(grants(), 2, 'the reader fetched its own (with the stored refresh token)')
      assert.deepEqual(degraded(reader.events), ['clock-behind'])
      await Promise.all([writer.close(), reader.close()])
    } finally {
      proxy.close()
    }
  })

  test('a writer 10 minutes slow: readers with good clocks still share its token', async () => {
    server.accessTokenLifetime = 300 // less than the writer's skew
    const f = await startFleet(server, 1, { store: redis.url }, skewedClock(-600))
    try {
      await f.get()
      for (let i = 0; i < 3; i++) await f.add({}, {})
      assert.equal(new Set(await f.get(5)).size, 1)
      assert.equal(server.sent('password'), 1, 'the writer logged in; the readers took its token')
      const stored = await redis.command('GET', (await redis.command('KEYS', 'sonetel-auth:v1:*')).find((k) => !k.endsWith(':lock')))
      assert.ok(!stored.includes('"skew"'), 'no skew is stored')
    } finally {
      await f.close()
    }
  })
})

describe('Redis as teams configure it', { skip: skipRedis }, () => {
  test('an ACL user without scripting rights: the lock is released after every fetch; no event', async () => {
    const redis = await startRedis()
    try {
      await redis.command('ACL', 'SETUSER', 'fleet', 'on', '>fleet-pass', '~*', '&*', '+@all', '-@scripting')
      const f = await startFleet(server, 4, { store: `redis://fleet:fleet-pass@127.0.0.1:${redis.port}`, storeKey: 'acl' })
      try {
        assert.equal(new Set(await f.get(5)).size, 1)
        assert.equal(server.sent('password'), 1)
        assert.equal(await redis.command('EXISTS', 'acl:lock'), 0, 'the lock was released')
        server.reset()
        await f.invalidate()
        assert.notEqual(await within(f.get(), 20_000), 'still waiting', 'no caller waits on a lock nobody holds')
        assert.equal(grants(), 1)
        assert.equal(await redis.command('EXISTS', 'acl:lock'), 0)
        const all = (await f.events()).flat()
        assert.deepEqual(all.filter((e) => e.type.startsWith('store-')), [])
      } finally {
        await f.close()
      }
    } finally {
      await redis.close()
    }
  })

  test('Redis closes idle connections (timeout 1): sharing goes on, with no store-unavailable', async () => {
    const redis = await startRedis({ args: ['--timeout', '1'] })
    try {
      const f = await startFleet(server, 4, { store: redis.url })
      try {
        assert.equal(new Set(await f.get()).size, 1)
        const clients = async () => Number(/connected_clients:(\d+)/.exec(await redis.command('INFO', 'clients'))[1])
        await until(async () => (await clients()) === 1, 'Redis to close the fleet\'s idle connections')
        for (let round = 0; round < 2; round++) {
          server.reset()
          await f.invalidate()
          assert.equal(new Set(await f.get(3)).size, 1)
          assert.equal(grants(), 1, 'one fetch for the fleet')
          await until(async () => (await clients()) === 1, 'the idle connections to close again')
        }
        const all = (await f.events()).flat()
        assert.ok(!types(all).includes('store-unavailable'), 'a closed idle connection is replaced, not reported')
      } finally {
        await f.close()
      }
    } finally {
      await redis.close()
    }
  })

  test('the Redis password changed, connections killed, password restored: sharing resumes, with store-available', async () => {
    const redis = await startRedis({ password: 'first-pass' })
    try {
      const f = await startFleet(server, 3, { store: redis.url })
      try {
        assert.equal(new Set(await f.get()).size, 1)
        await redis.command('CONFIG', 'SET', 'requirepass', 'second-pass')
        redis.password = 'second-pass'
        await redis.command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
        server.reset()
        await f.invalidate()
        assert.equal((await f.get()).length, 3, 'tokens all the same')
        assert.equal(grants(), 3, 'each process on its own while Redis refuses the login')
        await redis.command('CONFIG', 'SET', 'requirepass', 'first-pass')
        redis.password = 'first-pass'
        // From an empty store each round (see fleet.test.mjs, "Redis stopped mid-run").
        await until(async () => {
          server.reset()
          await redis.command('FLUSHALL')
          await f.invalidate()
          return new Set(await f.get()).size === 1 && grants() === 1
        }, 'the fleet to share again')
        for (const events of await f.events()) {
          const down = events.findIndex((e) => e.type === 'store-unavailable')
          assert.ok(down >= 0)
          assert.match(events[down].message, /Redis refused the login/)
          assert.ok(events.findIndex((e) => e.type === 'store-available') > down, 'store-available once it works again')
        }
      } finally {
        await f.close()
      }
    } finally {
      await redis.close()
    }
  })

  test('Redis evicts the token (maxmemory, allkeys-lru): a store-degraded event says so', async () => {
    const redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] })
    try {
      const m = manager({ store: redis.url, storeKey: 'evicted' })
      await m.getAccessToken()
      const used = Number(/used_memory:(\d+)/.exec(await redis.command('INFO', 'memory'))[1])
      await redis.command('CONFIG', 'SET', 'maxmemory', String(used + 256 * 1024))
      const filler = 'x'.repeat(16 * 1024)
      for (let i = 0; i < 2000 && (await redis.command('EXISTS', 'evicted')) === 1; i++) await redis.command('SET', `filler:${i}`, filler)
      assert.equal(await redis.command('EXISTS', 'evicted'), 0, 'evicted')
      m.invalidate()
      await m.getAccessToken()
      assert.deepEqual(degraded(m.events), ['value-evicted'])
      await m.close()
    } finally {
      await redis.close()
    }
  })
})

describe('lock holders that die or stop, with default options', { skip: skipRedis }, () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(() => redis?.close())
  beforeEach(() => redis.command('FLUSHALL'))

  test('the holder SIGKILLed mid-request: a new process gets a token within one lease plus one fetch', async () => {
    const f = await startFleet(server, 1, { store: redis.url, storeKey: 'killed' })
    try {
      server.fault('hang', { times: 1 })
      const [holder] = f.procs
      const held = f.ask(holder, { cmd: 'get' }).catch(() => 'killed')
      await until(() => server.requests.length === 1, 'the holder\'s request')
      assert.equal(await redis.command('EXISTS', 'killed:lock'), 1)
      holder.kill('SIGKILL')
      assert.equal(await held, 'killed')
      const newcomer = await f.add()
      // The lease is 5 s; the old lock lived 151 s with these options.
      const reply = await within(f.ask(newcomer, { cmd: 'get' }), 30_000)
      assert.notEqual(reply, 'still waiting')
      assert.equal(reply.tokens.length, 1)
    } finally {
      await f.close()
    }
  })

  test('the holder SIGSTOPped mid-request: a new process takes over after one lease; the holder, resumed, does not overwrite the newer token', async () => {
    const f = await startFleet(server, 1, { store: redis.url, storeKey: 'stopped' })
    const g = gate()
    try {
      server.fault('delay', { until: g.promise, times: 1 })
      const [holder] = f.procs
      const held = f.ask(holder, { cmd: 'get' })
      await until(() => server.requests.length === 1, 'the holder\'s request')
      holder.kill('SIGSTOP')
      const newcomer = await f.add()
      const reply = await within(f.ask(newcomer, { cmd: 'get' }), 30_000)
      assert.notEqual(reply, 'still waiting', 'the stopped holder\'s lease lapsed')
      const [newer] = reply.tokens
      assert.ok((await redis.command('GET', 'stopped')).includes(newer))
      holder.kill('SIGCONT')
      g.open()
      const [older] = (await held).tokens
      assert.notEqual(older, newer)
      assert.ok((await redis.command('GET', 'stopped')).includes(newer), 'the resumed holder did not overwrite the newer token')
      const [holderEvents] = await Promise.all([f.ask(holder, { cmd: 'events' })])
      assert.ok(degraded(holderEvents.events).includes('lease-lost'))
    } finally {
      g.open()
      await f.close()
    }
  })

  test('close() in the middle of a fetch releases the lock: the next process does not wait out the lease', async () => {
    const g = gate()
    server.fault('delay', { until: g.promise, times: 1 })
    const m = manager({ store: redis.url, storeKey: 'closing', storeLeaseMs: 600_000 })
    const pending = m.getAccessToken().catch((e) => e.code)
    await until(() => server.requests.length === 1, 'the request under the lock')
    assert.equal(await redis.command('EXISTS', 'closing:lock'), 1)
    await m.close()
    assert.equal(await pending, 'ERR_SONETEL_CLOSED')
    await until(async () => (await redis.command('EXISTS', 'closing:lock')) === 0, 'the lock to be released', 20_000)
    g.open()
  })

  test('a lock with no expiry (set by hand, or by another program): one wait, then remembered until it is released', async () => {
    await redis.command('SET', 'stuck:lock', 'someone-else')
    const m = manager({ store: redis.url, storeKey: 'stuck' })
    assert.notEqual(await within(m.getAccessToken(), 20_000), 'still waiting')
    assert.deepEqual(degraded(m.events), ['lock-stuck'])
    assert.match(m.events.find((e) => e.type === 'store-degraded').message, /no expiry/)
    const other = manager({ store: redis.url, storeKey: 'stuck' })
    await other.getAccessToken()
    assert.equal(server.sent('password'), 1, 'the token fetched beside the stuck lock is still shared')
    m.invalidate()
    const again = performance.now()
    await m.getAccessToken()
    assert.equal(degraded(m.events).length, 1, 'said once')
    assert.ok(performance.now() - again < 5000, 'no second wait')
    await redis.command('DEL', 'stuck:lock')
    m.invalidate()
    await m.getAccessToken()
    assert.equal(await redis.command('EXISTS', 'stuck:lock'), 0, 'the lock is used again once seen released')
    await m.close()
    await other.close()
  })
})

describe('rotating refresh tokens', { skip: skipRedis }, () => {
  test('a store failure during a refresh: refused processes read the store again before the password (1 password, not N-1)', async () => {
    const redis = await startRedis()
    server.rotateRefreshTokens = true
    const g = gate()
    try {
      await redis.command('ACL', 'SETUSER', 'fleet', 'on', '>fleet-pass', '~*', '&*', '+@all')
      const f = await startFleet(server, 8, { store: `redis://fleet:fleet-pass@127.0.0.1:${redis.port}`, storeKey: 'rotating', storeTimeoutMs: 500 })
      try {
        assert.equal(new Set(await f.get()).size, 1)
        await redis.command('ACL', 'SETUSER', 'fleet', '-@all') // every command refused: the store fails
        server.reset()
        server.fault('delay', { until: g.promise, times: 8 })
        await f.invalidate()
        const tokens = f.get()
        await until(() => server.sent('refresh_token') === 8, 'each process refreshing on its own')
        await redis.command('ACL', 'SETUSER', 'fleet', '+@all') // the store is back
        g.open() // one refresh wins; seven are refused, their refresh token used up
        assert.equal((await tokens).length, 8)
        assert.equal(server.sent('password'), 1, 'the refused processes went back to the store; one logged in for all')
      } finally {
        await f.close()
      }
    } finally {
      g.open()
      await redis.close()
    }
  })
})

describe('many managers in one process', () => {
  test('200 managers on one Redis URL share a connection', { skip: skipRedis }, async () => {
    const redis = await startRedis()
    try {
      const clients = async () => Number(/connected_clients:(\d+)/.exec(await redis.command('INFO', 'clients'))[1]) - 1
      const ms = Array.from({ length: 200 }, () => manager({ store: redis.url, storeKey: 'many' }))
      await Promise.all(ms.map((m) => m.getAccessToken()))
      assert.equal(server.sent('password'), 1)
      const open = await clients()
      assert.ok(open >= 1 && open <= 3, `${open} connections for 200 managers`)
      await Promise.all(ms.map((m) => m.close()))
    } finally {
      await redis.close()
    }
  })

  test('200 managers on one file store: a bounded number of threads', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-threads-'))
    try {
      const script = `
        const { TokenManager } = require(${JSON.stringify(path.resolve('index.js'))})
        const threads = () => Number(/Threads:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1])
        ;(async () => {
          const first = new TokenManager({ username: ${JSON.stringify(USER)}, password: ${JSON.stringify(PASSWORD)}, tokenUrl: process.env.TOKEN_URL })
          await first.getAccessToken() // the addon's runtime is up
          const before = threads()
          const ms = Array.from({ length: 200 }, () => new TokenManager({ username: ${JSON.stringify(USER)}, password: ${JSON.stringify(PASSWORD)}, tokenUrl: process.env.TOKEN_URL, store: 'file://${dir}/t.json' }))
          let most = 0
          const timer = setInterval(() => { most = Math.max(most, threads()) }, 1)
          await Promise.all(ms.map((m) => m.getAccessToken()))
          clearInterval(timer)
          most = Math.max(most, threads())
          console.log(JSON.stringify({ before, most }))
          process.exit(0)
        })()`
      if (process.platform !== 'linux') return
      const child = await runScript(script)
      assert.equal(child.status, 0, child.stderr)
      const { before, most } = JSON.parse(child.stdout)
      assert.ok(most - before <= 12, `${most - before} more threads for 200 managers`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('a store someone else can write to', () => {
  let dir
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-hostile-')) })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  test('a planted token of another account (no storeSecret) is refused: its user_name claim is checked', async () => {
    const file = path.join(dir, 'planted.json')
    const theirs = await createAccessToken(OTHER_USER, 'other-password', { tokenUrl: server.tokenUrl })
    fs.writeFileSync(file, JSON.stringify({ v: 1, owner: ownerOf(USER), token: theirs }), { mode: 0o600 })
    server.reset()
    const m = manager({ store: `file://${file}` })
    const token = await m.getToken()
    assert.equal(token.claims.user_name, USER, 'our own account')
    assert.equal(server.sent('password'), 1)
    assert.deepEqual(degraded(m.events), ['value-not-ours'])
    assert.ok(!fs.readFileSync(file, 'utf8').includes(theirs.access_token), 'overwritten')
    // A forged token whose user_name is not a string names no one we know.
    const forged = `e30.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, user_name: [USER] })).toString('base64url')}.x`
    fs.writeFileSync(file, JSON.stringify({ v: 1, owner: ownerOf(USER), token: { access_token: forged } }), { mode: 0o600 })
    const other = manager({ store: `file://${file}` })
    assert.notEqual(await other.getAccessToken(), forged)
    assert.deepEqual(degraded(other.events), ['value-not-ours'])
  })

  test('a symlink planted at <path>.lock is not followed: nothing is created where it points', async () => {
    const file = path.join(dir, 'linked.json')
    const victim = path.join(dir, 'victim')
    fs.symlinkSync(victim, `${file}.lock`)
    const m = manager({ store: `file://${file}` })
    await m.getAccessToken()
    assert.ok(!fs.existsSync(victim), 'the link was followed')
    assert.match(m.events.find((e) => e.type === 'store-unavailable')?.message ?? '', /symbolic link/)
  })

  test('the lock file removed while held (mutual exclusion broken): store-degraded lock-file-replaced', async () => {
    const file = path.join(dir, 'unlinked.json')
    const g = gate()
    server.fault('delay', { until: g.promise, times: 1 })
    const m = manager({ store: `file://${file}` })
    const token = m.getAccessToken()
    await until(() => server.requests.length === 1, 'the request under the lock')
    fs.unlinkSync(`${file}.lock`)
    g.open()
    await token
    assert.deepEqual(degraded(m.events), ['lock-file-replaced'])
  })

  test('a lock file left mode 0666 is made 0600', async () => {
    const file = path.join(dir, 'loose.json')
    fs.writeFileSync(`${file}.lock`, '')
    fs.chmodSync(`${file}.lock`, 0o666)
    await manager({ store: `file://${file}` }).getAccessToken()
    assert.equal(fs.statSync(`${file}.lock`).mode & 0o777, 0o600)
  })

  test('a FIFO at the store path is refused at once, not waited on', { skip: spawnSync('mkfifo', ['--version']).error && 'needs mkfifo (Debian package coreutils)' }, async () => {
    const file = path.join(dir, 'fifo.json')
    assert.equal(spawnSync('mkfifo', [file]).status, 0)
    const m = manager({ store: `file://${file}` })
    await m.getAccessToken()
    assert.deepEqual(degraded(m.events), ['not-a-regular-file'])
    assert.ok(!types(m.events).includes('store-unavailable'), 'refused, not timed out')
  })

  test('a store path that leads to /dev/zero: read no further than 1 MiB', async () => {
    const file = path.join(dir, 'zero.json')
    fs.symlinkSync('/dev/zero', file)
    const script = `
      const { TokenManager } = require(${JSON.stringify(path.resolve('index.js'))})
      const events = []
      const m = new TokenManager({ username: ${JSON.stringify(USER)}, password: ${JSON.stringify(PASSWORD)}, tokenUrl: process.env.TOKEN_URL, store: 'file://${file}', onEvent: (e) => events.push(e) })
      m.getAccessToken().then(() => setTimeout(() => {
        console.log(JSON.stringify({ rss: process.memoryUsage.rss(), maxRss: process.resourceUsage().maxRSS * 1024, events }))
        process.exit(0)
      }, 1500))`
    const child = await runScript(script)
    assert.equal(child.status, 0, child.stderr)
    const { maxRss, events } = JSON.parse(child.stdout)
    assert.ok(maxRss < 300 * 1024 * 1024, `peak RSS ${Math.round(maxRss / 1048576)} MiB`)
    assert.deepEqual(degraded(events), ['not-a-regular-file'])
  })

  test('temporary files: a stale one (a writer killed mid-write) is swept, a fresh one kept, none left on failure', async () => {
    const file = path.join(dir, 'temps.json')
    const stale = `${file}.1234567890.tmp`
    const fresh = `${file}.987654321.tmp`
    fs.writeFileSync(stale, '{"access_token":"left by a writer killed mid-write"}', { mode: 0o600 })
    fs.writeFileSync(fresh, '{}', { mode: 0o600 })
    const old = new Date(Date.now() - 5 * 60_000)
    fs.utimesSync(stale, old, old)
    await manager({ store: `file://${file}` }).getAccessToken()
    assert.ok(!fs.existsSync(stale), 'the stale temporary file was removed')
    assert.ok(fs.existsSync(fresh), 'a live writer\'s file is left alone')
    fs.rmSync(fresh)
    // A write that fails at the rename (the store path is a non-empty directory).
    const blocked = path.join(dir, 'blocked.json')
    fs.mkdirSync(blocked)
    fs.writeFileSync(path.join(blocked, 'x'), '')
    const m = manager({ store: `file://${blocked}` })
    await m.getAccessToken()
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('blocked.json.') && n.endsWith('.tmp')), [], 'no temporary file left')
  })

  test('a Redis value over 1 MiB is not read whole: store-degraded, then overwritten', { skip: skipRedis }, async () => {
    const redis = await startRedis()
    try {
      await redis.command('SET', 'oversized', 'x'.repeat(2 * 1024 * 1024))
      const m = manager({ store: redis.url, storeKey: 'oversized' })
      await m.getAccessToken()
      assert.deepEqual(degraded(m.events), ['value-too-large'])
      assert.ok((await redis.command('STRLEN', 'oversized')) < 64 * 1024, 'replaced by the token')
      await m.close()
    } finally {
      await redis.close()
    }
  })

  test('a hash planted at the key and a list at its lock: not read, said, and the key replaced by the token', { skip: skipRedis }, async () => {
    const redis = await startRedis()
    try {
      await redis.command('HSET', 'typed', 'access_token', 'x')
      await redis.command('RPUSH', 'typed:lock', 'x')
      const m = manager({ store: redis.url, storeKey: 'typed' })
      await m.getAccessToken()
      assert.deepEqual(degraded(m.events).sort(), ['lock-stuck', 'value-not-ours'])
      assert.equal(await redis.command('TYPE', 'typed'), 'string', 'replaced by the token')
      assert.ok(!types(m.events).includes('store-unavailable'))
      await m.close()
    } finally {
      await redis.close()
    }
  })

  test('plain redis:// to another machine without storeSecret is refused, naming rediss:// and storeSecret', () => {
    for (const store of ['redis://10.1.2.3:6379', 'redis://cache.internal:6379/0', 'redis://user:pw@[2001:db8::1]:6379', 'redis://cache.localhost:6379', 'redis://127.0.0.1.nip.io']) {
      assert.throws(() => new TokenManager({ username: USER, password: PASSWORD, store }), (e) => {
        assert.equal(e.code, 'ERR_INVALID_ARG_VALUE')
        assert.ok(e instanceof TypeError)
        assert.match(e.message, /rediss:\/\//)
        assert.match(e.message, /storeSecret/)
        assert.ok(!e.message.includes(':pw@'), 'the URL\'s password is not echoed')
        return true
      }, store)
    }
    for (const ok of [{ store: 'redis://10.1.2.3:6379', storeSecret: 'a passphrase of the fleet' }, { store: 'rediss://cache.internal:6380' },
      { store: 'redis://127.0.0.1:6379' }, { store: 'redis://localhost:6379' }, { store: 'redis://[::1]:6379' }]) {
      new TokenManager({ username: USER, password: PASSWORD, ...ok }).close()
    }
  })
})

test('storeSecret as a passphrase: Argon2id runs off the JavaScript thread, on first store use', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-argon-'))
  try {
    const store = `file://${dir}/sealed.json`
    // Side by side in one run: constructors with a passphrase and with a 32-byte key,
    // interleaved, compared by their medians (Argon2id on this thread costs 15 ms or more each).
    const median = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1]
    const timed = { passphrase: [], bytes: [] }
    const ms = []
    for (let i = 0; i < 30; i++) {
      for (const [kind, storeSecret] of [['passphrase', 'a passphrase of the fleet'], ['bytes', new Uint8Array(32).fill(7)]]) {
        const t = performance.now()
        const m = manager({ store, storeSecret })
        timed[kind].push(performance.now() - t)
        if (kind === 'passphrase') ms.push(m)
        else m.close()
      }
    }
    const [passphrase, bytes] = [median(timed.passphrase), median(timed.bytes)]
    assert.ok(passphrase < bytes * 5 + 1, `a constructor with a passphrase: ${passphrase.toFixed(2)} ms; with 32 bytes: ${bytes.toFixed(2)} ms`)
    const [token] = await Promise.all(ms.slice(0, 2).map((m) => m.getAccessToken()))
    assert.equal(server.sent('password'), 1, 'one derived key sealed, the other opened')
    assert.ok(!fs.readFileSync(`${dir}/sealed.json`, 'utf8').includes(token.split('.')[1]))
    await Promise.all(ms.map((m) => m.close()))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('an API that refuses every token: a new token is not asked for on every call; the 401 comes back and an event says why', async () => {
  server.refuseApiTokens = true
  const m = manager({ apiUrl: server.apiUrl })
  for (let i = 0; i < 10; i++) {
    await rejection(m.api('/account/{acc_id}/'), 'ERR_SONETEL_HTTP', { status: 401 })
  }
  assert.ok(grants() <= 2, `${grants()} token requests for 10 calls`)
  const refused = m.events.filter((e) => e.type === 'api-refused')
  assert.equal(refused.length, 1)
  assert.ok(refused[0].untilMs > Date.now() + 30_000)
  // The hold is for that path: a token revoked meanwhile is still replaced for another.
  server.revokeAccessTokens()
  server.refuseApiTokens = false
  assert.ok((await m.api('/account/{acc_id}/user/')).length)
  // Sonetel takes the token again: calls on the held path work at once with it.
  assert.ok((await m.api('/account/{acc_id}/')).account_id)
  await m.close()
})

test('401s on ever new paths (ids in the path) after a replacement was refused: a few new tokens a minute, not one per call', async () => {
  server.refuseApiTokens = true
  const m = manager({ apiUrl: server.apiUrl })
  for (let i = 0; i < 20; i++) {
    await rejection(m.api(`/account/{acc_id}/user/${i}`), 'ERR_SONETEL_HTTP', { status: 401 })
  }
  assert.ok(grants() <= 3, `${grants()} token requests for 20 calls on 20 paths`)
  await m.close()
})

test('a token taken from the store and refused on the retry is dropped, not held against the API', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-adopted-'))
  try {
    const store = `file://${dir}/t.json`
    const x = manager({ store, apiUrl: server.apiUrl })
    const y = manager({ store })
    await x.getAccessToken()
    await y.getAccessToken()
    y.invalidate()
    await y.getAccessToken() // the store now holds a token x has not seen
    server.revokeAccessTokens() // both
    await rejection(x.api('/account/{acc_id}'), 'ERR_SONETEL_HTTP', { status: 401 }) // retried with the stored one, revoked too
    assert.ok((await x.api('/account/{acc_id}')).account_id, 'the next call fetches a new token')
    assert.ok(!types(x.events).includes('api-refused'))
    await Promise.all([x.close(), y.close()])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('tokens revoked twice in a row (each replacement worked): each time a new token, no hold', async () => {
  const m = manager({ apiUrl: server.apiUrl })
  assert.ok((await m.api('/account/{acc_id}')).account_id)
  for (let i = 0; i < 3; i++) {
    server.revokeAccessTokens()
    assert.ok((await m.api('/account/{acc_id}')).account_id, `revocation ${i + 1}`)
  }
  assert.equal(grants(), 4)
  assert.ok(!types(m.events).includes('api-refused'))
  await m.close()
})
