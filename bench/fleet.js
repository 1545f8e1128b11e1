'use strict'
// npm run bench:fleet: what sharing a token saves. N processes (1, 4, 16), each with a
// TokenManager asking for a token every 10 ms, with no store, a Redis store and a file
// store, over three token lifetimes: the token requests Sonetel's side sees per token
// lifetime. Then the latency of a token taken from the store against a token request.
// Needs redis-server for the Redis rows (Debian package redis-server). Writes
// bench/fleet-results.json and prints a table.

const { fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startSonetel } = require('sonetel-auth/testing')
const { startRedis, redisMissing } = require('../testing/redis.js')

const LIFETIME = Number(process.env.FLEET_LIFETIME || 4) // seconds
const LIFETIMES = 3
const SIZES = (process.env.FLEET_SIZES || '1,4,16').split(',').map(Number)
const USER = 'demo@example.com'
const PASSWORD = 'demo-password'

if (process.argv[2] === 'child') {
  // One process of the fleet: a token every 10 ms until told to stop.
  const { TokenManager } = require('..')
  const manager = new TokenManager(JSON.parse(process.env.OPTIONS))
  let stop = false
  let calls = 0
  const run = async () => {
    while (!stop) {
      await manager.getAccessToken()
      calls++
      await new Promise((r) => setTimeout(r, 10))
    }
    process.send({ calls })
    process.disconnect()
  }
  process.on('message', (m) => {
    if (m === 'go') run()
    else stop = true
  })
  process.send('ready')
  return
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function fleetRun(server, n, store) {
  server.reset()
  const options = { username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, ...(store ? { store } : {}) }
  const procs = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const child = fork(__filename, ['child'], { env: { ...process.env, OPTIONS: JSON.stringify(options) } })
    child.once('message', () => resolve(child))
  })))
  server.reset()
  const started = performance.now()
  for (const p of procs) p.send('go')
  await new Promise((r) => setTimeout(r, LIFETIME * LIFETIMES * 1000))
  const done = procs.map((p) => new Promise((resolve) => { p.once('message', resolve); p.send('stop') }))
  const calls = (await Promise.all(done)).reduce((sum, r) => sum + r.calls, 0)
  const seconds = (performance.now() - started) / 1000
  const requests = server.requests.length
  return { processes: n, store: store ? store.split(':')[0] : 'none', calls, requests, perLifetime: requests / (seconds / LIFETIME) }
}

/** Median ms of a token request, and of a fresh manager taking the token from the store. */
async function latencies(server, stores) {
  const { createAccessToken, TokenManager } = require('..')
  const out = {}
  const request = []
  for (let i = 0; i < 200; i++) {
    const t = performance.now()
    await createAccessToken(USER, PASSWORD, { tokenUrl: server.tokenUrl })
    request.push(performance.now() - t)
  }
  out['token request (local stand-in, plain http)'] = median(request)
  for (const [name, store] of Object.entries(stores)) {
    await new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store }).getAccessToken()
    const hits = []
    for (let i = 0; i < 200; i++) {
      const m = new TokenManager({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store })
      const t = performance.now()
      await m.getAccessToken()
      hits.push(performance.now() - t)
    }
    out[`token from the store (${name})`] = median(hits)
  }
  return out
}

async function main() {
  const server = await startSonetel({ accessTokenLifetime: LIFETIME })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-fleet-bench-'))
  const redis = redisMissing() ? null : await startRedis()
  const stores = { file: `file://${path.join(dir, 'token.json')}`, ...(redis ? { redis: redis.url } : {}) }
  const rows = []
  for (const n of SIZES) {
    for (const store of [null, ...Object.values(stores)]) {
      if (redis && store === redis.url) await redis.command('FLUSHALL')
      if (store?.startsWith('file:')) fs.rmSync(path.join(dir, 'token.json'), { force: true })
      const row = await fleetRun(server, n, store)
      rows.push(row)
      process.stderr.write(`${n} processes, ${row.store}: ${row.requests} requests, ${row.perLifetime.toFixed(1)} per lifetime\n`)
    }
  }
  server.accessTokenLifetime = 86400
  const latency = await latencies(server, stores)
  await server.close()
  await redis?.close()
  fs.rmSync(dir, { recursive: true, force: true })
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0].model, node: process.version },
    tokenLifetimeSeconds: LIFETIME,
    rows,
    latencyMs: latency,
    notes: redis ? {} : { redis: 'redis-server not installed (Debian package redis-server): no Redis rows' },
  }
  fs.writeFileSync(path.join(__dirname, 'fleet-results.json'), JSON.stringify(results, null, 2) + '\n')
  console.log(`\n${results.date.slice(0, 10)} · ${results.machine.cpus} × ${results.machine.cpuModel} · Node.js ${results.machine.node} · token lifetime ${LIFETIME} s, ${LIFETIMES} lifetimes per row\n`)
  const storesNames = ['none', ...Object.keys(stores)]
  console.log(`| processes | ${storesNames.map((s) => `token requests per lifetime, ${s === 'none' ? 'no store' : s}`).join(' | ')} |`)
  console.log(`|---|${storesNames.map(() => '---').join('|')}|`)
  for (const n of SIZES) {
    const cells = storesNames.map((s) => rows.find((r) => r.processes === n && r.store === s)?.perLifetime.toFixed(1) ?? '–')
    console.log(`| ${n} | ${cells.join(' | ')} |`)
  }
  console.log('\n| latency (median of 200) | ms |\n|---|---|')
  for (const [k, v] of Object.entries(latency)) console.log(`| ${k} | ${v.toFixed(3)} |`)
}

main().catch((e) => { console.error(e); process.exitCode = 1 })
