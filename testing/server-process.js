'use strict'
// Runs the local Sonetel server in a child process, so that a benchmark or soak test
// measures the client alone (and can read the server's own CPU time).
//   node testing/server-process.js [--https] [--hang]   prints one JSON line: { tokenUrl, apiUrl, ca, pid }
// (--hang: accept every request and never answer it.)

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const readline = require('node:readline')

if (require.main === module) {
  const { startSonetel } = require('./index.js')
  startSonetel({ https: process.argv.includes('--https') }).then((server) => {
    if (process.argv.includes('--hang')) server.fault('hang')
    process.stdout.write(JSON.stringify({ tokenUrl: server.tokenUrl, apiUrl: server.apiUrl, ca: server.ca, pid: process.pid }) + '\n')
    // Requests are not recorded here: a long benchmark would keep millions of them.
    server.requests.push = () => 0
    server.apiRequests.push = () => 0
    process.on('disconnect', () => process.exit(0))
    process.on('SIGTERM', () => process.exit(0))
  })
} else {
  /** Starts the server process; resolves with { tokenUrl, apiUrl, ca, pid, cpuSeconds(), close() }. */
  module.exports.spawnSonetelServer = function spawnSonetelServer({ https = false, hang = false } = {}) {
    const flags = [...(https ? ['--https'] : []), ...(hang ? ['--hang'] : [])]
    const child = spawn(process.execPath, [__filename, ...flags], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    return new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`server process exited (${code})`)))
      readline.createInterface({ input: child.stdout }).once('line', (line) => {
        const info = JSON.parse(line)
        resolve({
          ...info,
          /** User + system CPU seconds the server process has used so far (Linux). */
          cpuSeconds() {
            const fields = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ')
            return (Number(fields[11]) + Number(fields[12])) / 100
          },
          close() {
            child.removeAllListeners('exit')
            return new Promise((done) => { child.once('exit', done); child.kill('SIGTERM') })
          },
        })
      })
    })
  }
}
