'use strict'
// npm run bench: the addon against the approach of Sonetel's sample (https + form-data),
// against fetch, and against what the server and loopback allow (wrk), over HTTPS to the
// local Sonetel server, in one run. Writes bench/results.json and prints a table.
//   BENCH_REPEATS (default 3) repeats of every workload; COLD_RUNS (default 11) cold starts;
//   BENCH_EXTRA="name=/path/to/build.node,…" adds other builds of the addon (see clients.js);
//   BENCH_CLIENTS="addon,name" runs only those clients; BENCH_RESULTS names the output file.

const { execFileSync, spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSonetelServer } = require('../testing/server-process.js')
const { USER, PASSWORD } = require('./clients.js')

const REPEATS = Number(process.env.BENCH_REPEATS || 3)
const COLD_RUNS = Number(process.env.COLD_RUNS || 11)
const EXTRA = (process.env.BENCH_EXTRA || '').split(',').filter(Boolean).map((e) => e.split('=')[0])
const CLIENTS = process.env.BENCH_CLIENTS ? process.env.BENCH_CLIENTS.split(',') : ['addon', ...EXTRA, 'sonetel-sample', 'fetch']
const root = path.resolve(__dirname, '..')

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length })

function runClient(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'run-client.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${args[0]} exited ${code}`))))
  })
}

function dirSize(dir) {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    total += entry.isDirectory() ? dirSize(p) : fs.statSync(p).size
  }
  return total
}

/** Bytes of a package and everything it depends on, as installed. */
function packageTreeSize(name, seen = new Set()) {
  if (seen.has(name)) return 0
  seen.add(name)
  const dir = path.join(root, 'node_modules', name)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  let total = dirSize(dir)
  for (const dep of Object.keys(pkg.dependencies || {})) total += packageTreeSize(dep, seen)
  return total
}

function multipartBody() {
  const boundary = '----sonetel-bench-boundary'
  const fields = { grant_type: 'password', username: USER, password: PASSWORD, refresh: 'yes' }
  let body = ''
  for (const [k, v] of Object.entries(fields)) body += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`
  return { body: body + `--${boundary}--\r\n`, contentType: `multipart/form-data; boundary=${boundary}` }
}

/** wrk (C, not JavaScript) posting the same body: what the server and loopback allow. */
function runWrk(url, dir) {
  if (spawnSync('wrk', ['--version']).error) return null
  const { body, contentType } = multipartBody()
  const lua = (s) => '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '\\r').replace(/\n/g, '\\n') + '"'
  const script = path.join(dir, 'post.lua')
  fs.writeFileSync(script, [
    'wrk.method = "POST"',
    `wrk.body = ${lua(body)}`,
    `wrk.headers["Content-Type"] = ${lua(contentType)}`,
    `wrk.headers["Authorization"] = ${lua('Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64'))}`,
  ].join('\n'))
  const run = (connections) => {
    const out = execFileSync('wrk', ['-t', connections > 1 ? '2' : '1', '-c', String(connections), '-d', '4s', '--latency', '-s', script, url], { encoding: 'utf8' })
    const ms = (v, unit) => Number(v) * ({ us: 1e-3, ms: 1, s: 1000 }[unit])
    const pct = (p) => { const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out); return m ? ms(m[1], m[2]) : NaN }
    const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)
    if (errors) throw new Error(`wrk saw ${errors[1]} error answers`)
    return { perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]), medianMs: pct(50), p99Ms: pct(99) }
  }
  return { c1: run(1), c16: run(16), c64: run(64) }
}

async function main() {
  const server = await spawnSonetelServer({ https: true })
  const url = server.tokenUrl.replace('127.0.0.1', 'localhost')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-bench-'))
  const caFile = path.join(dir, 'ca.pem')
  fs.writeFileSync(caFile, server.ca)

  const raw = Object.fromEntries(CLIENTS.map((c) => [c, []]))
  const serverShare = Object.fromEntries(CLIENTS.map((c) => [c, []]))
  for (let r = 0; r < REPEATS; r++) {
    for (const client of CLIENTS) {
      const cpu0 = server.cpuSeconds()
      const t0 = performance.now()
      raw[client].push(JSON.parse(await runClient([client, url, caFile])))
      serverShare[client].push((server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000))
      process.stderr.write(`repeat ${r + 1}/${REPEATS}: ${client} done\n`)
    }
  }

  const cold = Object.fromEntries(CLIENTS.map((c) => [c, []]))
  for (let i = 0; i < COLD_RUNS; i++) {
    for (const client of CLIENTS) {
      const t0 = performance.now()
      await runClient([client, url, caFile, '--cold'])
      cold[client].push(performance.now() - t0)
    }
  }
  process.stderr.write('cold starts done\n')

  const wrkRuns = []
  for (let r = 0; r < REPEATS; r++) {
    const w = runWrk(url, dir)
    if (!w) break
    wrkRuns.push(w)
  }

  const nodeFile = fs.readdirSync(root).find((f) => /^sonetel-auth\..*\.node$/.test(f))
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0].model, node: process.version, platform: `${process.platform}-${process.arch}` },
    repeats: REPEATS,
    clients: {},
    installedBytes: {
      addon: fs.statSync(path.join(root, nodeFile)).size,
      'sonetel-sample': packageTreeSize('form-data'),
      fetch: 0,
    },
    notes: {
      fetch: 'fetch is built into Node.js; the undici package is used only to trust the test CA',
      limit: wrkRuns.length ? 'wrk 4.1 (1 thread at c=1, 2 threads above), the same multipart body, 4 s per run' : 'wrk not installed (apt-get install wrk); the limit row is empty',
    },
  }
  for (const client of CLIENTS) {
    const keys = Object.keys(raw[client][0]).filter((k) => k !== 'client')
    results.clients[client] = Object.fromEntries(keys.map((k) => [k, stats(raw[client].map((x) => x[k]))]))
    results.clients[client].coldStartMs = stats(cold[client])
    results.clients[client].serverCpuShare = stats(serverShare[client])
  }
  if (wrkRuns.length) {
    results.clients.limit = {
      c1MedianMs: stats(wrkRuns.map((w) => w.c1.medianMs)),
      c1P99Ms: stats(wrkRuns.map((w) => w.c1.p99Ms)),
      c16PerSecond: stats(wrkRuns.map((w) => w.c16.perSecond)),
      c64PerSecond: stats(wrkRuns.map((w) => w.c64.perSecond)),
    }
  }
  await server.close()
  fs.rmSync(dir, { recursive: true, force: true })

  const c = results.clients
  const m = (client, key) => c[client]?.[key]?.median
  results.ratios = {
    cpuPerTokenC64AddonVsSample: m('addon', 'c64CpuUsPerToken') / m('sonetel-sample', 'c64CpuUsPerToken'),
    cpuPerTokenC64AddonVsFetch: m('addon', 'c64CpuUsPerToken') / m('fetch', 'c64CpuUsPerToken'),
    c1MedianAddonVsSample: m('addon', 'c1MedianMs') / m('sonetel-sample', 'c1MedianMs'),
    c1MedianAddonVsFetch: m('addon', 'c1MedianMs') / m('fetch', 'c1MedianMs'),
    coldStartAddonVsSample: m('addon', 'coldStartMs') / m('sonetel-sample', 'coldStartMs'),
  }
  for (const name of EXTRA) {
    results.ratios[`cpuPerTokenC64AddonVs_${name}`] = m('addon', 'c64CpuUsPerToken') / m(name, 'c64CpuUsPerToken')
    results.ratios[`coldStartAddonVs_${name}`] = m('addon', 'coldStartMs') / m(name, 'coldStartMs')
  }
  fs.writeFileSync(process.env.BENCH_RESULTS || path.join(__dirname, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  printTable(results)
}

function printTable(results) {
  const fmt = (s, digits = 2) => (s ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : '–')
  const rows = [
    ['median latency, c=1 (ms)', 'c1MedianMs', 3],
    ['p99 latency, c=1 (ms)', 'c1P99Ms', 3],
    ['throughput, c=16 (tokens/s)', 'c16PerSecond', 0],
    ['throughput, c=64 (tokens/s)', 'c64PerSecond', 0],
    ['client CPU per token, c=1 (µs)', 'c1CpuUsPerToken', 0],
    ['client CPU per token, c=64 (µs)', 'c64CpuUsPerToken', 0],
    ['peak RSS (MiB)', 'peakRssMiB', 1],
    ['cold start to first token (ms)', 'coldStartMs', 1],
    ['server CPU share (cores)', 'serverCpuShare', 2],
  ]
  const names = Object.keys(results.clients)
  const { machine } = results
  console.log(`\n${results.date.slice(0, 10)} · ${machine.cpus} × ${machine.cpuModel} · Node.js ${machine.node} · median (min–max) of ${results.repeats} runs\n`)
  console.log(`| | ${names.join(' | ')} |`)
  console.log(`|---|${names.map(() => '---').join('|')}|`)
  for (const [label, key, digits] of rows) {
    console.log(`| ${label} | ${names.map((n) => fmt(results.clients[n][key], digits)).join(' | ')} |`)
  }
  const size = (b) => (b === undefined ? '–' : b === 0 ? 'built in' : `${(b / 1024).toFixed(0)} KiB`)
  console.log(`| installed size | ${names.map((n) => size(results.installedBytes[n])).join(' | ')} |`)
  console.log('\nratios (addon ÷ other, medians):')
  for (const [k, v] of Object.entries(results.ratios)) console.log(`  ${k.padEnd(32)} ${v.toFixed(2)}`)
}

main().catch((e) => { console.error(e); process.exitCode = 1 })
