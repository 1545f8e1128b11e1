// Certificates as Node.js accepts them: a self-signed certificate marked CA:TRUE (what
// `openssl req -x509` makes by default), given as `ca`, is accepted for the server that
// presents exactly that certificate, with the host name still checked; a CA-signed chain is
// verified as always; an unrelated self-signed certificate is still refused.
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import https from 'node:https'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'
import { addon, rejection, startSonetel, USER, PASSWORD } from './helpers/common.mjs'

const require = createRequire(import.meta.url)
const { selfSignedCertificate } = require('../testing/certs.js')
const { createAccessToken } = addon

let self // a server presenting a self-signed CA:TRUE certificate
let chained // a server presenting a leaf signed by a test CA
let pinned
before(async () => {
  pinned = selfSignedCertificate()
  self = await startSonetel({ https: true, cert: pinned.cert, key: pinned.key })
  chained = await startSonetel({ https: true })
})
after(async () => {
  await self.close()
  await chained.close()
})

const at = (server, host = 'localhost') => server.tokenUrl.replace('127.0.0.1', host)

test('the certificate is the kind Node accepts: self-signed and CA:TRUE', async () => {
  const x509 = new X509Certificate(pinned.cert)
  assert.equal(x509.ca, true)
  assert.equal(x509.issuer, x509.subject)
  // Node's own https trusts it as `ca`; so must we.
  const status = await new Promise((resolve, reject) => {
    https.get(at(self), { ca: pinned.cert }, (res) => { res.resume(); resolve(res.statusCode) }).on('error', reject)
  })
  assert.equal(status, 405, 'the TLS handshake succeeded and the server answered')
})

test('a self-signed CA:TRUE certificate given as ca is accepted for the server that presents it', async () => {
  const token = await createAccessToken(USER, PASSWORD, { tokenUrl: at(self), ca: pinned.cert })
  assert.equal(token.token_type, 'bearer')
})

test('the host name is still checked: the same certificate for another name is refused', async () => {
  const { err } = await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: at(self, '127.0.0.1'), ca: pinned.cert }), 'ERR_SONETEL_NETWORK')
  assert.match(err.message, /name|NotValidForName/i)
})

test('an unrelated self-signed certificate is still refused', async () => {
  const other = selfSignedCertificate()
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: at(self), ca: other.cert }), 'ERR_SONETEL_NETWORK')
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: at(self) }), 'ERR_SONETEL_NETWORK')
})

test('a CA-signed chain is verified as always; the pinned self-signed certificate does not vouch for it', async () => {
  assert.equal((await createAccessToken(USER, PASSWORD, { tokenUrl: at(chained), ca: chained.ca })).token_type, 'bearer')
  await rejection(createAccessToken(USER, PASSWORD, { tokenUrl: at(chained), ca: pinned.cert }), 'ERR_SONETEL_NETWORK')
})
