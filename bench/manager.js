'use strict'
// npm run bench:manager: what TokenManager costs a backend.
//   - 1 000 concurrent getAccessToken() calls on an empty cache: how many token requests
//   - a cached getAccessToken() call: calls per second and µs of CPU per call
const { TokenManager } = require('..')
const { startSonetel } = require('sonetel-auth/testing')

async function main() {
  const server = await startSonetel()
  const manager = new TokenManager({ username: 'demo@example.com', password: 'demo-password', tokenUrl: server.tokenUrl })
  await Promise.all(Array.from({ length: 1000 }, () => manager.getAccessToken()))
  console.log(`1 000 concurrent calls on an empty cache: ${server.requests.length} token request(s)`)

  const N = 1_000_000
  for (let round = 1; round <= 3; round++) {
    const cpu = process.cpuUsage()
    const started = performance.now()
    for (let i = 0; i < N; i++) await manager.getAccessToken()
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    console.log(`cached getAccessToken(), round ${round}: ${(N / seconds / 1e6).toFixed(2)} M calls/s, ${((used.user + used.system) / N).toFixed(2)} µs CPU per call`)
  }
  console.log(`token requests in all: ${server.requests.length}`)
  await server.close()
}

main().catch((e) => { console.error(e); process.exitCode = 1 })
