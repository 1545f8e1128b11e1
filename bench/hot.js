'use strict'
// npm run bench:hot: what a backend pays on every request, side by side in one process.
// A cached getAccessToken(), authorizationHeader() and getToken() against a plain
// JavaScript cache (an async function that checks the clock and returns what it holds),
// and decodeAccessToken against base64url + JSON.parse, at a real token's size and at
// 47 KiB. Rounds alternate between the two sides; the ratio is the median of the rounds'
// ratios. Goals (issue 16): at most 2×, 2×, 5× and 1.2×.
//   HOT_ROUNDS (default 15), HOT_CALLS (default 200000) calls per round and side.

const { startSonetel } = require('sonetel-auth/testing')
const { TokenManager, decodeAccessToken } = require('..')

const ROUNDS = Number(process.env.HOT_ROUNDS || 15)
const CALLS = Number(process.env.HOT_CALLS || 200_000)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** ns per call of `fn`, awaited one after another (as a request handler awaits it). */
async function timeAsync(fn, calls) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) await fn()
  return Number(process.hrtime.bigint() - started) / calls
}

function timeSync(fn, calls) {
  let sink = 0
  const started = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) sink += fn() === null ? 1 : 0
  const ns = Number(process.hrtime.bigint() - started) / calls
  if (sink > 0) throw new Error('unreachable')
  return ns
}

async function compare(name, ours, plain, goal, sync = false, calls = CALLS) {
  const time = sync ? (fn) => timeSync(fn, calls) : (fn) => timeAsync(fn, calls)
  // Warm both sides up before measuring.
  await time(ours)
  await time(plain)
  const ratios = []
  const oursNs = []
  const plainNs = []
  for (let r = 0; r < ROUNDS; r++) {
    let x
    let y
    if (r % 2 === 0) {
      x = await time(ours)
      y = await time(plain)
    } else {
      y = await time(plain)
      x = await time(ours)
    }
    oursNs.push(x)
    plainNs.push(y)
    ratios.push(x / y)
  }
  const ratio = median(ratios)
  return { name, oursNs: median(oursNs), plainNs: median(plainNs), ratio, goal, met: ratio <= goal }
}

function bigToken(payloadBytes) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const claims = { exp: 1_900_000_000, iat: 1_800_000_000, user_id: 1, acc_id: 2, scope: ['a'], padding: 'x'.repeat(payloadBytes) }
  return `${b64({ alg: 'RS256' })}.${b64(claims)}.signature`
}

async function main() {
  const server = await startSonetel()
  try {
    const manager = new TokenManager({ username: 'demo@example.com', password: 'demo-password', tokenUrl: server.tokenUrl })
    const token = await manager.getAccessToken()
    const whole = await manager.getToken()
    // The plain cache: what an app would write by hand around a token it holds.
    const cache = { token, header: `Bearer ${token}`, whole, until: Date.now() + 3_600_000 }
    const plainToken = async () => (Date.now() < cache.until ? cache.token : undefined)
    const plainHeader = async () => (Date.now() < cache.until ? cache.header : undefined)
    const plainWhole = async () => (Date.now() < cache.until ? cache.whole : undefined)
    const payloadOf = (t) => t.slice(t.indexOf('.') + 1, t.lastIndexOf('.'))
    const plainDecode = (t) => () => JSON.parse(Buffer.from(payloadOf(t), 'base64url'))
    const big = bigToken(35 * 1024)
    const results = [
      await compare('getAccessToken() (cached)', () => manager.getAccessToken(), plainToken, 2),
      await compare('authorizationHeader() (cached)', () => manager.authorizationHeader(), plainHeader, 2),
      await compare('getToken() (cached)', () => manager.getToken(), plainWhole, 5),
      await compare(`decodeAccessToken (${token.length} B token)`, () => decodeAccessToken(token), plainDecode(token), 1.2, true),
      await compare(`decodeAccessToken (${Math.round(big.length / 1024)} KiB token)`, () => decodeAccessToken(big), plainDecode(big), 1.2, true, 2000),
    ]
    if (server.requests.length !== 1) throw new Error(`the cached calls made ${server.requests.length - 1} requests`)
    console.log(`Node ${process.version}, ${ROUNDS} rounds; ns per call, median of rounds`)
    console.log('| call | sonetel-auth | plain JavaScript | ratio | goal |')
    console.log('|---|---|---|---|---|')
    for (const r of results) {
      console.log(`| ${r.name} | ${r.oursNs.toFixed(0)} | ${r.plainNs.toFixed(0)} | ${r.ratio.toFixed(2)}× | ≤ ${r.goal}× ${r.met ? 'met' : 'MISSED'} |`)
    }
  } finally {
    await server.close()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
