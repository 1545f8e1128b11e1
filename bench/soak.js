'use strict'
// npm run soak: load and soak figures for the addon against the local server (run in its
// own process, over plain HTTP on loopback). Not part of npm test; takes a few minutes.
//   - 10 000 concurrent calls: every one settles, no unhandled rejection
//   - 100 000 sequential calls: RSS after warm-up and at the end
//   - the largest event-loop delay during 1 000 concurrent calls
//   - the addon used from 4 worker_threads at once
//   - a process that has finished its calls exits on its own, and how fast
// Exits non-zero when a goal of the hardening issue is missed.

const { spawn } = require('node:child_process')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const auth = require('..')

const USER = 'demo@example.com'
const PASSWORD = 'demo-password'
const MiB = 1024 * 1024

async function workerMain() {
  const { url, calls } = workerData
  let ok = 0
  for (let i = 0; i < calls; i += 50) {
    const batch = await Promise.allSettled(Array.from({ length: 50 }, () => auth.createAccessToken(USER, PASSWORD, { tokenUrl: url })))
    ok += batch.filter((r) => r.status === 'fulfilled').length
  }
  parentPort.postMessage(ok)
}

async function exitChild() {
  // Child mode: a few calls, then nothing; the parent times how long the process lingers.
  const url = process.argv[3]
  await Promise.all(Array.from({ length: 20 }, () => auth.createAccessToken(USER, PASSWORD, { tokenUrl: url })))
  process.stdout.write(String(performance.timeOrigin + performance.now()))
}

async function main() {
  const { spawnSonetelServer } = require('../testing/server-process.js')
  const server = await spawnSonetelServer()
  const opts = { tokenUrl: server.tokenUrl, timeoutMs: 60_000 }
  const results = {}
  let unhandled = 0
  process.on('unhandledRejection', () => { unhandled++ })
  const call = () => auth.createAccessToken(USER, PASSWORD, opts)
  const line = (label, value) => console.log(`${label.padEnd(52)} ${value}`)

  // 1. 10 000 concurrent calls.
  {
    const started = performance.now()
    const settled = await Promise.allSettled(Array.from({ length: 10_000 }, call))
    const ok = settled.filter((r) => r.status === 'fulfilled').length
    const codes = {}
    for (const r of settled) if (r.status === 'rejected') codes[r.reason.code] = (codes[r.reason.code] || 0) + 1
    results.concurrent10k = { settled: settled.length, fulfilled: ok, rejected: codes, seconds: (performance.now() - started) / 1000 }
    line('10 000 concurrent calls: settled / fulfilled', `${settled.length} / ${ok} in ${results.concurrent10k.seconds.toFixed(2)} s ${JSON.stringify(codes)}`)
  }

  // 2. 100 000 sequential calls, RSS after a warm-up of 5 000 and at the end.
  {
    for (let i = 0; i < 5_000; i++) await call()
    global.gc?.()
    const rssWarm = process.memoryUsage().rss
    const started = performance.now()
    for (let i = 0; i < 100_000; i++) await call()
    global.gc?.()
    const rssEnd = process.memoryUsage().rss
    const seconds = (performance.now() - started) / 1000
    results.sequential100k = { rssAfterWarmupMiB: rssWarm / MiB, rssEndMiB: rssEnd / MiB, growthMiB: (rssEnd - rssWarm) / MiB, seconds }
    line('100 000 sequential calls: RSS after warm-up -> end', `${(rssWarm / MiB).toFixed(1)} MiB -> ${(rssEnd / MiB).toFixed(1)} MiB (growth ${((rssEnd - rssWarm) / MiB).toFixed(1)} MiB), ${(100_000 / seconds).toFixed(0)} calls/s`)
  }

  // 3. Event-loop delay during 1 000 concurrent calls.
  {
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    await Promise.all(Array.from({ length: 1_000 }, call))
    h.disable()
    results.eventLoopDelay1k = { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, meanMs: h.mean / 1e6 }
    line('event-loop delay during 1 000 concurrent calls', `max ${(h.max / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms`)
  }

  // 4. Four worker threads at once.
  {
    const calls = 2_000
    const started = performance.now()
    const oks = await Promise.all(Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { url: server.tokenUrl, calls } })
      w.once('message', resolve)
      w.once('error', reject)
    })))
    results.workers = { threads: 4, callsEach: calls, fulfilled: oks, seconds: (performance.now() - started) / 1000 }
    line('4 worker_threads x 2 000 calls: fulfilled', `${oks.join(' + ')} in ${results.workers.seconds.toFixed(2)} s`)
  }

  // 5. A finished process exits on its own.
  {
    const lingers = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [__filename, '--exit-child', server.tokenUrl], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      const guard = setTimeout(() => { child.kill(); reject(new Error('the process did not exit within 30 s')) }, 30_000)
      child.stdout.on('data', (d) => { out += d })
      child.once('exit', () => { clearTimeout(guard); resolve(Date.now() - Number(out)) })
    })
    results.exitAfterLastCallMs = lingers
    line('process exit after its last call settled', `${lingers.toFixed(0)} ms`)
  }

  results.unhandledRejections = unhandled
  line('unhandled rejections', unhandled)
  await server.close()

  const goals = [
    ['every one of 10 000 concurrent calls settled', results.concurrent10k.settled === 10_000],
    ['RSS growth over 100 000 calls under 20 MiB', results.sequential100k.growthMiB < 20],
    ['largest event-loop delay under 50 ms', results.eventLoopDelay1k.maxMs < 50],
    ['all worker calls fulfilled', results.workers.fulfilled.every((n) => n === 2_000)],
    ['no unhandled rejection', unhandled === 0],
  ]
  console.log()
  for (const [goal, met] of goals) console.log(`${met ? 'met   ' : 'MISSED'} ${goal}`)
  console.log(JSON.stringify(results))
  if (goals.some(([, met]) => !met)) process.exitCode = 1
}

if (!isMainThread) workerMain()
else if (process.argv[2] === '--exit-child') exitChild()
else main().catch((e) => { console.error(e); process.exitCode = 1 })

