'use strict'
// A real Redis (Debian's redis-server) for the tests: started on a free loopback port with
// no persistence, optionally with TLS (certificates from testing/certs.js) and a password;
// stopped and started again on the same port to play an outage. A tiny RESP client reads
// raw values, so a test can look at what a TokenManager stored.

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { testCertificates } = require('./certs')

/** Why Redis tests cannot run here, or null when they can. */
function redisMissing() {
  return spawnSync('redis-server', ['--version']).error ? 'needs redis-server (Debian package redis-server)' : null
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
})

const alive = (pid) => { try { process.kill(pid, 0); return true } catch { return false } }

/**
 * A test process killed outright (SIGKILL, a runner's timeout) cannot stop its redis-server;
 * the next start stops any whose owner is gone, so they never pile up.
 */
function reapOrphans() {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith('sonetel-auth-redis-')) continue
    const dir = path.join(os.tmpdir(), name)
    let owner
    try { owner = Number(fs.readFileSync(path.join(dir, 'owner'), 'utf8')) } catch { continue }
    if (alive(owner)) continue
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'redis.pid'), 'utf8'))
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('redis-server')) process.kill(pid, 'SIGKILL')
    } catch {}
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Starts redis-server. Options: `tls` (serve TLS only), `password` (requirepass), `args`
 * (more `--name value` arguments).
 */
async function startRedis({ tls = false, password, args: extra = [] } = {}) {
  reapOrphans()
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-redis-'))
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid))
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no']
  let certs
  if (tls) {
    certs = testCertificates()
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', path.join(certs.dir, 'server.pem'),
      '--tls-key-file', path.join(certs.dir, 'server.key'), '--tls-ca-cert-file', path.join(certs.dir, 'ca.pem'), '--tls-auth-clients', 'no')
  } else {
    args.push('--port', String(port))
  }
  if (password) args.push('--requirepass', password)
  args.push(...extra)
  let child
  const start = async () => {
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    fs.writeFileSync(path.join(dir, 'redis.pid'), String(child.pid))
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 15_000)
      const check = () => { if (/Ready to accept connections/.test(out)) { clearTimeout(timer); resolve() } else setTimeout(check, 20) }
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited ${code}:\n${out}`)) })
      check()
    })
    child.removeAllListeners('exit')
  }
  // (A server killed by a signal keeps exitCode null: signalCode tells it ended.)
  const stop = () => new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
  await start()
  // A runner that exits with the server still up (a failed assertion skipping `after`).
  const onExit = () => { try { child.kill('SIGKILL') } catch {} }
  process.once('exit', onExit)
  const auth = password ? `:${encodeURIComponent(password)}@` : ''
  return {
    port,
    url: `${tls ? 'rediss' : 'redis'}://${auth}${tls ? 'localhost' : '127.0.0.1'}:${port}`,
    ca: certs?.ca,
    /** The password `command` logs in with (after a test changed requirepass). */
    set password(p) { password = p },
    start,
    stop,
    /** Sends one command (plain TCP only) and resolves with the reply. */
    command(...parts) {
      return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1')
        let buf = Buffer.alloc(0)
        const send = (argv) => socket.write(`*${argv.length}\r\n` + argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
        const login = password
        if (login) send(['AUTH', login])
        send(parts.map(String))
        socket.on('data', (d) => {
          buf = Buffer.concat([buf, d])
          const replies = parseReplies(buf)
          if (replies.length === (login ? 2 : 1)) { socket.end(); resolve(replies.at(-1)) }
        })
        socket.on('error', reject)
      })
    },
    async close() {
      process.off('exit', onExit)
      await stop()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The complete RESP replies in `buf` (strings, integers, bulk strings, nil, errors, arrays of those). */
function parseReplies(buf) {
  const replies = []
  let at = 0
  const line = () => {
    const end = buf.indexOf('\r\n', at)
    if (end < 0) return null
    const text = buf.toString('utf8', at, end)
    at = end + 2
    return text
  }
  const one = () => {
    const l = line()
    if (l === null) return undefined
    switch (l[0]) {
      case '+': return l.slice(1)
      case '-': return new Error(l.slice(1))
      case ':': return Number(l.slice(1))
      case '$': {
        const n = Number(l.slice(1))
        if (n < 0) return null
        if (buf.length < at + n + 2) return undefined
        const s = buf.toString('utf8', at, at + n)
        at += n + 2
        return s
      }
      case '*': {
        const n = Number(l.slice(1))
        const items = []
        for (let i = 0; i < n; i++) { const item = one(); if (item === undefined) return undefined; items.push(item) }
        return items
      }
      default: return undefined
    }
  }
  for (;;) {
    const start = at
    const r = one()
    if (r === undefined) { at = start; break }
    replies.push(r)
  }
  return replies
}

module.exports = { startRedis, redisMissing }
