// Run by test:runtimes under Bun and Deno, in a project with the packed package installed.
const { createAccessToken } = require('sonetel-auth')

;(async () => {
  const token = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl: process.env.TOKEN_URL })
  const misspelt = await createAccessToken('demo@example.com', 'demo-password', { tokeUrl: process.env.TOKEN_URL }).catch((e) => e)
  console.log(JSON.stringify({ cjs: token.token_type, unknownOption: misspelt.code }))
})()
