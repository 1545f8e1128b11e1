'use strict'
// One client's workload in a fresh process (so CPU, RSS and JIT state are its own):
//   node bench/run-client.js <client> <tokenUrl> <caFile> [--cold]
// Prints one JSON line of figures. With --cold: obtains one token and exits.

const fs = require('node:fs')
const { clients } = require('./clients.js')

const [name, tokenUrl, caFile] = process.argv.slice(2)
const cold = process.argv.includes('--cold')

function cpuMicros() {
  const u = process.cpuUsage() // every thread of the process, the addon's own included
  return u.user + u.system
}

async function latency(get, n) {
  const times = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await get()
    times[i] = performance.now() - t
  }
  times.sort()
  return { medianMs: times[Math.floor(n / 2)], p99Ms: times[Math.floor(n * 0.99)] }
}

async function throughput(get, concurrency, total) {
  let next = 0
  const worker = async () => { while (next++ < total) await get() }
  // Warm up at this concurrency first, so that every client has reached its steady
  // state: connections open and pooled (reqwest's pool may open several connections per
  // concurrent request while it ramps up; see the README), JIT warm.
  await Promise.all(Array.from({ length: concurrency }, async () => { for (let i = 0; i < 100; i++) await get() }))
  const started = performance.now()
  const cpu = cpuMicros()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  return { perSecond: total / seconds, cpuUsPerToken: (cpuMicros() - cpu) / total }
}

async function main() {
  const ca = fs.readFileSync(caFile, 'utf8')
  const get = clients[name](tokenUrl, ca)
  const token = await get()
  if (typeof token.access_token !== 'string') throw new Error('no token')
  if (cold) return
  for (let i = 0; i < 300; i++) await get() // warm-up: JIT, connection pools
  const cpu1Start = cpuMicros()
  const c1 = await latency(get, 2000)
  const cpu1 = (cpuMicros() - cpu1Start) / 2000
  const c16 = await throughput(get, 16, 6000)
  const c64 = await throughput(get, 64, 12000)
  console.log(JSON.stringify({
    client: name,
    c1MedianMs: c1.medianMs,
    c1P99Ms: c1.p99Ms,
    c1CpuUsPerToken: cpu1,
    c16PerSecond: c16.perSecond,
    c64PerSecond: c64.perSecond,
    c64CpuUsPerToken: c64.cpuUsPerToken,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  }))
}

main().catch((e) => { console.error(e); process.exit(1) })
