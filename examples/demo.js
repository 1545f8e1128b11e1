'use strict'
// npm run demo: gets a token through the addon and shows what a user gets.
// Without SONETEL_USERNAME/SONETEL_PASSWORD it runs against the local Sonetel stand-in
// (HTTPS, with a certificate made at start-up); with them, against the real Sonetel.

const { createAccessToken, decodeAccessToken, TokenManager } = require('..')
const { startSonetel } = require('sonetel-auth/testing')

const shorten = (token) => `${token.slice(0, 12)}…${token.slice(-6)} (${token.length} chars)`

async function main() {
  let server
  let username = process.env.SONETEL_USERNAME
  let password = process.env.SONETEL_PASSWORD
  let options = {}
  if (username && password) {
    console.log('Using the real Sonetel token endpoint.')
  } else {
    server = await startSonetel({ https: true })
    ;({ username, password } = server)
    options = { tokenUrl: server.tokenUrl.replace('127.0.0.1', 'localhost'), ca: server.ca }
    console.log(`Using the local Sonetel stand-in (sonetel-auth/testing) at ${options.tokenUrl} (API at ${server.apiUrl})`)
  }

  const started = process.hrtime.bigint()
  const token = await createAccessToken(username, password, options)
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const claims = decodeAccessToken(token.access_token)

  console.log(`\ncreateAccessToken(${JSON.stringify(username)}, '********') resolved in ${ms.toFixed(1)} ms:`)
  console.log(`  token_type     ${token.token_type}`)
  console.log(`  access_token   ${shorten(token.access_token)}`)
  console.log(`  refresh_token  ${token.refresh_token ? shorten(token.refresh_token) : '(none)'}`)
  console.log(`  expires_in     ${token.expires_in} s (expires ${new Date(claims.exp * 1000).toISOString()})`)
  console.log(`  scope          ${token.scope}`)
  console.log(`  other fields   ${Object.keys(token).filter((k) => !['access_token', 'token_type', 'refresh_token', 'expires_in', 'scope'].includes(k)).join(', ')}`)
  console.log('\ndecodeAccessToken(token.access_token):')
  for (const [key, value] of Object.entries(claims)) console.log(`  ${key.padEnd(14)} ${JSON.stringify(value)}`)

  const manager = new TokenManager({ username, password, ...options, token, ...(server ? { apiUrl: server.apiUrl } : {}) })
  const header = await manager.authorizationHeader()
  console.log(`\nTokenManager#authorizationHeader() → "Bearer ${shorten(header.slice(7))}" (cached, no request)`)

  const account = await manager.api('/account/{acc_id}')
  console.log(`\nmanager.api('/account/{acc_id}') → account ${account.account_id}, credit ${account.credit_balance} ${account.currency}`)
  try {
    await manager.api('/make-calls/call/call-back', { json: { call1: 'not a number', call2: '+46812345678' } })
  } catch (err) {
    console.log(`A call-back Sonetel answers with HTTP ${err.status} and "failed" rejects with code ${err.code}: ${err.apiCode}, ${err.detail}`)
  }

  try {
    await createAccessToken(username, 'not-the-password', options)
  } catch (err) {
    console.log(`\nA wrong password rejects with code ${err.code}: ${err.message}`)
  }
  if (server) await server.close()
}

main().catch((err) => {
  console.error(`demo failed: ${err.code ?? ''} ${err.message}`)
  process.exitCode = 1
})
