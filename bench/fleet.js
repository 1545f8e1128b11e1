'use strict'
// npm run bench:fleet: what sharing a token saves. N processes (1, 4, 16, 64), each with a
// TokenManager asking for a token every 10 ms, with no store, a file store, a Redis store
// and a Redis that closes idle connections after 1 s (`timeout 1`), over three token
// lifetimes: the token requests Sonetel's side sees per token lifetime. Then the latency
// of a token taken from the store against a token request, and how long a new process
// waits for its first token after the lock holder was SIGKILLed mid-request, with
// default options.
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
const SIZES = (process.env.FLEET_SIZES || '1,4,16,64').split(',').map(Number)
// Which stores to run, by name (default all): none, file, redis, idle.
const ONLY = process.env.FLEET_STORES?.split(',')
const wanted = (name) => !ONLY || ONLY.includes(name)
const USER = 'demo@example.com'
const PASSWORD = 'demo-password'

if (process.argv[2] === 'once') {
  // A process that asks for one token when told to, and says when it has it.
  const { TokenManager } = require('..')
  const manager = new TokenManager(JSON.parse(process.env.OPTIONS))
  process.on('message', () => manager.getAccessToken().then(() => process.send('token'), (e) => process.send(`error ${e.code}`)))
  process.send('ready')
  return
}

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

async function fleetRun(server, n, name, store) {
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
  return { processes: n, store: name, calls, requests, perLifetime: requests / (seconds / LIFETIME) }
}

/**
 * Milliseconds from SIGKILLing a lock holder mid-request (default options) to a new
 * process's first token, that process's start included.
 */
async function takeover(server, store) {
  server.reset()
  const options = JSON.stringify({ username: USER, password: PASSWORD, tokenUrl: server.tokenUrl, store })
  const start = () => new Promise((resolve) => {
    const child = fork(__filename, ['once'], { env: { ...process.env, OPTIONS: options } })
    child.once('message', () => resolve(child))
  })
  server.fault('hang', { times: 1 })
  const holder = await start()
  holder.send('get')
  while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
  holder.kill('SIGKILL')
  const killed = performance.now()
  const newcomer = await start()
  newcomer.send('get')
  const answer = await new Promise((resolve) => newcomer.once('message', resolve))
  const ms = performance.now() - killed
  newcomer.kill()
  server.clearFaults()
  if (answer !== 'token') throw new Error(`the new process got ${answer}`)
  return ms
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
  const idle = redis ? await startRedis({ args: ['--timeout', '1'] }) : null
  const stores = { file: `file://${path.join(dir, 'token.json')}`, ...(redis ? { redis: redis.url, idle: idle.url } : {}) }
  const rows = []
  for (const n of SIZES) {
    for (const [name, store] of [['none', null], ...Object.entries(stores)].filter(([name]) => wanted(name))) {
      if (redis && store === redis.url) await redis.command('FLUSHALL')
      if (idle && store === idle.url) await idle.command('FLUSHALL')
      if (store?.startsWith('file:')) fs.rmSync(path.join(dir, 'token.json'), { force: true })
      const row = await fleetRun(server, n, name, store)
      rows.push(row)
      process.stderr.write(`${n} processes, ${row.store}: ${row.requests} requests, ${row.perLifetime.toFixed(1)} per lifetime\n`)
    }
  }
  server.accessTokenLifetime = 86400
  const measured = Object.fromEntries(Object.entries({ file: stores.file, redis: redis?.url }).filter(([name, url]) => url && wanted(name)))
  const latency = await latencies(server, measured)
  const takeoverMs = {}
  for (const [name, store] of Object.entries(measured)) {
    if (redis && store === redis.url) await redis.command('FLUSHALL')
    if (store.startsWith('file:')) fs.rmSync(path.join(dir, 'token.json'), { force: true })
    takeoverMs[name] = await takeover(server, store)
    process.stderr.write(`takeover after a killed holder, ${name}: ${Math.round(takeoverMs[name])} ms\n`)
  }
  await server.close()
  await redis?.close()
  await idle?.close()
  fs.rmSync(dir, { recursive: true, force: true })
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0].model, node: process.version },
    tokenLifetimeSeconds: LIFETIME,
    rows,
    latencyMs: latency,
    takeoverMs,
    notes: redis ? {} : { redis: 'redis-server not installed (Debian package redis-server): no Redis rows' },
  }
  fs.writeFileSync(path.join(__dirname, 'fleet-results.json'), JSON.stringify(results, null, 2) + '\n')
  console.log(`\n${results.date.slice(0, 10)} · ${results.machine.cpus} × ${results.machine.cpuModel} · Node.js ${results.machine.node} · token lifetime ${LIFETIME} s, ${LIFETIMES} lifetimes per row\n`)
  const storesNames = ['none', ...Object.keys(stores)].filter(wanted)
  const title = { none: 'no store', file: 'file', redis: 'Redis', idle: 'Redis closing idle connections (timeout 1)' }
  console.log(`| processes | ${storesNames.map((s) => `token requests per lifetime, ${title[s]}`).join(' | ')} |`)
  console.log(`|---|${storesNames.map(() => '---').join('|')}|`)
  for (const n of SIZES) {
    const cells = storesNames.map((s) => rows.find((r) => r.processes === n && r.store === s)?.perLifetime.toFixed(1) ?? '–')
    console.log(`| ${n} | ${cells.join(' | ')} |`)
  }
  console.log('\n| latency (median of 200) | ms |\n|---|---|')
  for (const [k, v] of Object.entries(latency)) console.log(`| ${k} | ${v.toFixed(3)} |`)
  console.log('\n| a new process\'s first token after the lock holder was SIGKILLed (default options) | ms |\n|---|---|')
  for (const [k, v] of Object.entries(takeoverMs)) console.log(`| ${k} | ${Math.round(v)} |`)
}

main().catch((e) => { console.error(e); process.exitCode = 1 })
