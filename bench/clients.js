'use strict'
// The clients the benchmark compares. Each factory takes (tokenUrl, caPem) and returns
// an async function that obtains one token.

const USER = 'demo@example.com'
const PASSWORD = 'demo-password'

const clients = {
  /** This package. */
  addon(tokenUrl, ca) {
    const { createAccessToken } = require('..')
    return () => createAccessToken(USER, PASSWORD, { tokenUrl, ca })
  },

  /**
   * Our re-implementation of the approach of Sonetel's published sample: https.request
   * with Basic auth and a `form-data` body piped into it, the body collected as a string
   * and JSON.parse'd. Like the sample it uses Node's default agent (keep-alive in Node 20).
   */
  'sonetel-sample'(tokenUrl, ca) {
    const https = require('node:https')
    const FormData = require('form-data')
    const url = new URL(tokenUrl)
    return () => new Promise((resolve, reject) => {
      const form = new FormData()
      form.append('grant_type', 'password')
      form.append('username', USER)
      form.append('password', PASSWORD)
      form.append('refresh', 'yes')
      const req = https.request({
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        auth: 'sonetel-api:sonetel-api',
        headers: form.getHeaders(),
        ca,
      }, (res) => {
        let data = ''
        res.on('data', (chunk) => { data += chunk })
        res.on('end', () => {
          try { resolve(JSON.parse(data)) } catch (e) { reject(e) }
        })
      })
      req.on('error', reject)
      form.pipe(req)
    })
  },

  /** Node's global fetch with a FormData body, through an undici Agent that trusts the CA. */
  fetch(tokenUrl, ca) {
    const { Agent } = require('undici')
    const dispatcher = new Agent({ connect: { ca } })
    const authorization = 'Basic ' + Buffer.from('sonetel-api:sonetel-api').toString('base64')
    return async () => {
      const body = new FormData()
      body.append('grant_type', 'password')
      body.append('username', USER)
      body.append('password', PASSWORD)
      body.append('refresh', 'yes')
      const res = await fetch(tokenUrl, { method: 'POST', headers: { authorization }, body, dispatcher })
      const token = await res.json()
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      return token
    }
  },
}

// Other builds of the addon, to compare side by side in one run:
// BENCH_EXTRA="before=/path/to/old.node,mimalloc=/path/to/other.node".
for (const entry of (process.env.BENCH_EXTRA || '').split(',').filter(Boolean)) {
  const [name, file] = entry.split('=')
  clients[name] = (tokenUrl, ca) => {
    const { createAccessToken } = require(file)
    return () => createAccessToken(USER, PASSWORD, { tokenUrl, ca })
  }
}

module.exports = { clients, USER, PASSWORD }
