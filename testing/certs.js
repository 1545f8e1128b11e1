'use strict'
// Test certificates made at start-up with the openssl command: a private CA and a
// localhost server certificate it signed (rustls refuses a CA certificate used as a
// server's own, so a single self-signed certificate would not do).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

let cached

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Returns `{ ca, cert, key, dir }` (PEM strings), made once per process. */
function testCertificates() {
  if (cached) return cached
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-certs-'))
  try {
    cached = make(dir)
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return cached
}

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A CA and a localhost server certificate it signed, both with keys made by `newKey`. */
function make(dir, newKey = EC_P256) {
  openssl(['req', '-x509', '-new', ...newKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3',
    '-subj', '/CN=sonetel-auth test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  openssl(['req', '-new', ...newKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir)
  fs.writeFileSync(path.join(dir, 'ext.cnf'), [
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'))
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '3', '-extfile', 'ext.cnf'], dir)
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8')
  return { ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key'), dir }
}

/** Like testCertificates(), with RSA 2048 keys; a new pair each call. Returns `{ ca, cert, key }`. */
function rsaTestCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-rsa-'))
  try {
    const { ca, cert, key } = make(dir, ['-newkey', 'rsa:2048', '-nodes'])
    return { ca, cert, key }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A single self-signed certificate for `localhost`, made the way most private test servers
 * make theirs: `openssl req -x509 -newkey … -subj /CN=localhost`, which marks it `CA:TRUE`.
 * Returns `{ cert, key }` (PEM strings); each call makes a new one.
 */
function selfSignedCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonetel-auth-self-'))
  try {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '3', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost'], dir)
    const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8')
    return { cert: read('cert.pem'), key: read('key.pem') }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A localhost certificate signed by the test CA whose validity ends the second it is made
 * (`-days 0`): expired from the next second on. Returns `{ cert, key }`.
 */
function expiredCertificate() {
  const { dir } = testCertificates()
  const name = `expired-${process.pid}-${Date.now()}`
  try {
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost'], dir)
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '0', '-extfile', 'ext.cnf'], dir)
    const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8')
    return { cert: read(`${name}.pem`), key: read(`${name}.key`) }
  } finally {
    for (const ext of ['key', 'csr', 'pem']) fs.rmSync(path.join(dir, `${name}.${ext}`), { force: true })
  }
}

module.exports = { testCertificates, rsaTestCertificates, selfSignedCertificate, expiredCertificate }
