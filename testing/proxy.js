'use strict'
// A small forward proxy for tests: CONNECT tunnels for https, absolute-form forwarding
// for http. It records what passed through it, so a test can check what a proxy sees.

const http = require('node:http')
const net = require('node:net')

/**
 * Starts the proxy on 127.0.0.1 (a free port). Resolves with `{ url, seen, server, close() }`;
 * `seen` collects `{ method, target, auth, bytes }` for every request and tunnel.
 */
async function startProxy() {
  const seen = []
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, target: req.url, auth: req.headers['proxy-authorization'], bytes: '' }
    seen.push(entry)
    const target = new URL(req.url)
    const upstream = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.on('data', (d) => { entry.bytes += d.toString('latin1') })
    req.pipe(upstream)
  })
  server.on('connect', (req, client, head) => {
    const entry = { method: 'CONNECT', target: req.url, auth: req.headers['proxy-authorization'], bytes: '' }
    seen.push(entry)
    const [host, port] = [req.url.slice(0, req.url.lastIndexOf(':')), req.url.slice(req.url.lastIndexOf(':') + 1)]
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      client.on('data', (d) => { entry.bytes += d.toString('latin1') })
      client.pipe(upstream)
      upstream.pipe(client)
    })
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  const sockets = new Set()
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    port: server.address().port,
    seen,
    server,
    openConnections: () => sockets.size,
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

module.exports = { startProxy }
