// Run by test:runtimes under Bun and Deno, in a project with the packed package installed.
import { createAccessToken, isSonetelAuthError, TokenManager } from 'sonetel-auth'

const tokenUrl = process.env.TOKEN_URL
const token = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl })
const error = await createAccessToken('demo@example.com', 'not-the-password', { tokenUrl }).catch((e) => e)
const manager = new TokenManager({ username: 'demo@example.com', password: 'demo-password', tokenUrl })
const managed = await manager.getToken()
console.log(JSON.stringify({
  esm: token.token_type, code: error.code, status: error.status, typed: isSonetelAuthError(error), manager: managed.token_type,
}))
