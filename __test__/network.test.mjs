// Networks users have: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the proxy option, and
// NODE_EXTRA_CA_CERTS. Each case runs in a child process, since proxy variables and
// extra CAs are read once per process, as Node.js itself does.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, beforeEach, test } from 'node:test'
import { addon, startSonetel, startProxy, USER, PASSWORD } from './helpers/common.mjs'

const fixture = fileURLToPath(new URL('./fixtures/call.cjs', import.meta.url))
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?_proxy|no_proxy|all_proxy|node_extra_ca_certs)$/i.test(k)))

let tls
let plain
let proxy
let proxyUrl
let caFile
let seen // what passed through the proxy: { method, target, bytes }

function call(env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fixture], { env: { ...clean, ...env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })
}

before(async () => {
  tls = await startSonetel({ https: true })
  plain = await startSonetel()
  proxy = await startProxy()
  proxyUrl = proxy.url
  seen = proxy.seen
  caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-ca-')), 'ca.pem')
  fs.writeFileSync(caFile, tls.ca)
})
after(async () => {
  await tls.close()
  await plain.close()
  await proxy.close()
})
beforeEach(() => { seen.length = 0 })

const httpsTarget = () => tls.tokenUrl.replace('127.0.0.1', 'localhost')

test('HTTPS_PROXY: the request tunnels through the proxy with CONNECT, and stays encrypted', async () => {
  const r = await call({ TARGET: httpsTarget(), CA_FILE: caFile, HTTPS_PROXY: proxyUrl })
  assert.deepEqual(r, { ok: true, type: 'bearer' })
  assert.equal(seen.length, 1)
  assert.equal(seen[0].method, 'CONNECT')
  assert.equal(seen[0].target, `localhost:${new URL(tls.tokenUrl).port}`)
  assert.ok(seen[0].bytes.length > 100, 'bytes went through the tunnel')
  assert.ok(!seen[0].bytes.includes(PASSWORD), 'the proxy saw no password')
})

test('NO_PROXY: a listed host is reached directly', async () => {
  const r = await call({ TARGET: httpsTarget(), CA_FILE: caFile, HTTPS_PROXY: proxyUrl, NO_PROXY: 'localhost' })
  assert.equal(r.ok, true)
  assert.equal(seen.length, 0)
})

test('a plain-http (loopback) token URL never goes through a proxy: it would carry the password in clear', async () => {
  for (const env of [{ HTTP_PROXY: proxyUrl }, { ALL_PROXY: proxyUrl }, { PROXY_OPTION: proxyUrl }]) {
    const r = await call({ TARGET: plain.tokenUrl, ...env })
    assert.equal(r.ok, true, JSON.stringify(env))
    assert.equal(seen.length, 0, `the proxy saw the request with ${JSON.stringify(env)}`)
  }
})

test('the proxy option wins over the environment', async () => {
  const r = await call({ TARGET: httpsTarget(), CA_FILE: caFile, PROXY_OPTION: proxyUrl, NO_PROXY: '*' })
  assert.equal(r.ok, true)
  assert.equal(seen[0]?.method, 'CONNECT')
})

test('a proxy that refuses the tunnel is ERR_SONETEL_NETWORK', async () => {
  const dead = await new Promise((resolve) => {
    const s = net.createServer((c) => c.end('HTTP/1.1 403 Forbidden\r\n\r\n')).listen(0, '127.0.0.1', () => resolve(s))
  })
  try {
    const r = await call({ TARGET: httpsTarget(), CA_FILE: caFile, HTTPS_PROXY: `http://127.0.0.1:${dead.address().port}` })
    assert.equal(r.code, 'ERR_SONETEL_NETWORK')
  } finally {
    dead.close()
  }
})

test('NODE_EXTRA_CA_CERTS is trusted, as Node.js trusts it', async () => {
  const trusted = await call({ TARGET: httpsTarget(), NODE_EXTRA_CA_CERTS: caFile })
  assert.deepEqual(trusted, { ok: true, type: 'bearer' })
  const untrusted = await call({ TARGET: httpsTarget() })
  assert.equal(untrusted.code, 'ERR_SONETEL_NETWORK')
  assert.match(untrusted.message, /UnknownIssuer|certificate/i)
})

test('the proxy option in-process, with the ca option', async () => {
  const token = await addon.createAccessToken(USER, PASSWORD, { tokenUrl: httpsTarget(), ca: tls.ca, proxy: proxyUrl })
  assert.equal(token.token_type, 'bearer')
  assert.equal(seen[0]?.method, 'CONNECT')
})
