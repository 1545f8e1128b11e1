// Run by test:arm64 with Node.js for arm64 under qemu-aarch64, in a project with the
// packed package installed: ESM, TokenManager with api() over TLS, and two managers
// sharing a sealed file store (the store's open flags are per-architecture constants).
import { TokenManager, decodeAccessToken } from 'sonetel-auth'

const { TOKEN_URL: tokenUrl, API_URL: apiUrl, CA: ca, STORE: store } = process.env
const options = { username: 'demo@example.com', password: 'demo-password', tokenUrl, apiUrl, ca, store, storeSecret: 'an arm64 smoke-test passphrase' }

const first = new TokenManager(options)
const account = await first.api('/account/{acc_id}')
const token = await first.getAccessToken()
const response = await first.fetch('/account/{acc_id}')
const second = new TokenManager(options)
const shared = await second.getAccessToken()
await Promise.all([first.close(), second.close()])
console.log(JSON.stringify({
  arch: process.arch,
  account: { email: account.email, accId: String(account.account_id) === String(decodeAccessToken(token).acc_id) },
  fetch: { status: response.status, email: (await response.json()).response.email },
  shared: shared === token,
}))
