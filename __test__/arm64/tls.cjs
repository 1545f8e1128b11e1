// Run by test:arm64 with Node.js for arm64 under qemu-aarch64: a token through each TLS
// front in TARGETS (JSON: [{ name, url, ca }]), one after another. Prints what each gave.
const { createAccessToken } = require('sonetel-auth')

async function main() {
  const out = {}
  for (const { name, url, ca } of JSON.parse(process.env.TARGETS)) {
    out[name] = await createAccessToken('demo@example.com', 'demo-password', { tokenUrl: url, ca }).then(
      (t) => t.token_type,
      (e) => `${e.code}: ${e.message}`,
    )
  }
  console.log(JSON.stringify(out))
}
main().catch((e) => { console.error(e); process.exitCode = 1 })
