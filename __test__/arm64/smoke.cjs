// Run by test:arm64 with Node.js for arm64 under qemu-aarch64, in a project with the
// packed package installed: CommonJS, a token over TLS, a refused password, the claims.
const { createAccessToken, decodeAccessToken, isSonetelAuthError } = require('sonetel-auth')

const { TOKEN_URL: tokenUrl, CA: ca } = process.env

async function main() {
  const token = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl, ca })
  const refused = await createAccessToken('demo@example.com', 'not-the-password', { tokenUrl, ca }).catch((e) => e)
  const claims = decodeAccessToken(token.access_token)
  console.log(JSON.stringify({
    arch: process.arch,
    // The addon that answered, as Node loaded it.
    binaries: Object.keys(require.cache).filter((f) => f.endsWith('.node')),
    token: { type: token.token_type, aDay: token.expires_in > 86000 && token.expires_in <= 86400, scope: token.scope },
    claims: { user_name: claims.user_name, exp: claims.exp - claims.iat > 0 },
    refused: {
      code: refused.code,
      status: refused.status,
      error: refused.error,
      typed: isSonetelAuthError(refused),
      callerFrame: /smoke\.cjs:\d+/.test(refused.stack),
      leaks: `${refused.stack} ${require('node:util').inspect(refused)}`.includes('not-the-password'),
    },
  }))
}
main().catch((e) => { console.error(e); process.exitCode = 1 })
