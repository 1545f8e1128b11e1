#!/usr/bin/env node
'use strict'
// The sonetel-auth command: a Sonetel access token for shell scripts.
// Secrets come from the environment, standard input or a no-echo prompt, never from
// the command line (where `ps` and shell history would show them).

const { createAccessToken, refreshAccessToken, decodeAccessToken } = require('..')
const { version } = require('../package.json')

const USAGE = `Usage: sonetel-auth <command> [options]

Commands:
  token            Log in and print the access token.
                   The account e-mail comes from --username or SONETEL_USERNAME; the
                   password from SONETEL_PASSWORD, from standard input with
                   --password-stdin, or from a prompt (no echo) on a terminal.
  refresh          Print a new access token for the refresh token in
                   SONETEL_REFRESH_TOKEN or on standard input.
  decode [token]   Print a token's claims and when it expires (the token from the
                   argument or standard input). The signature is not checked.

Options:
  --json               Print the whole token response as JSON (token, refresh).
  --username <email>   The account e-mail (default: SONETEL_USERNAME).
  --password-stdin     Read the password from standard input.
  --token-url <url>    The token endpoint (default: Sonetel's).
  --timeout <ms>       Deadline for the request in milliseconds (default: 30000).
  -h, --help           Show this help.
  -v, --version        Show the version.

Exit codes: 0 done, 1 other error, 2 bad usage, 3 credentials refused,
4 network error, timeout or rate limit (try later), 5 unexpected answer from the server.
Example: TOKEN=$(SONETEL_USERNAME=me@example.com sonetel-auth token --password-stdin < pw.txt)
`

const EXIT = { usage: 2, refused: 3, network: 4, answer: 5, other: 1 }

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { positional: [] }
  const valueFlags = { '--username': 'username', '--token-url': 'tokenUrl', '--timeout': 'timeout' }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let inline
    if (arg.startsWith('--') && arg.includes('=')) [arg, inline] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
    if (arg === '-h' || arg === '--help') opts.help = true
    else if (arg === '-v' || arg === '--version') opts.version = true
    else if (arg === '--json') opts.json = true
    else if (arg === '--password-stdin') opts.passwordStdin = true
    else if (arg === '--password' || arg === '-p') {
      throw new UsageError('a password is never taken from the command line; use SONETEL_PASSWORD, --password-stdin or the prompt')
    } else if (valueFlags[arg]) {
      const value = inline ?? argv[++i]
      if (value === undefined) throw new UsageError(`${arg} needs a value`)
      opts[valueFlags[arg]] = value
    } else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`)
    else opts.positional.push(arg)
  }
  return opts
}

function requestOptions(opts) {
  const out = {}
  if (opts.tokenUrl !== undefined) out.tokenUrl = opts.tokenUrl
  if (opts.timeout !== undefined) {
    const ms = Number(opts.timeout)
    if (!Number.isFinite(ms) || ms <= 0) throw new UsageError('--timeout must be a positive number of milliseconds')
    out.timeoutMs = ms
  }
  return out
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const text = Buffer.concat(chunks).toString('utf8')
  return text.replace(/\r?\n$/, '')
}

/** Asks for the password on the terminal without echoing it. */
function prompt(question) {
  return new Promise((resolve, reject) => {
    const { stdin, stderr } = process
    stderr.write(question)
    stdin.setRawMode(true)
    stdin.resume()
    stdin.setEncoding('utf8')
    let answer = ''
    const done = (err) => {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.removeListener('data', onData)
      stderr.write('\n')
      if (err) reject(err)
      else resolve(answer)
    }
    const onData = (chunk) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new UsageError('cancelled'))
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1)
        else answer += ch
      }
    }
    stdin.on('data', onData)
  })
}

async function password(opts) {
  if (opts.passwordStdin) return readStdin()
  if (process.env.SONETEL_PASSWORD) return process.env.SONETEL_PASSWORD
  if (process.stdin.isTTY) return prompt('Sonetel password: ')
  throw new UsageError('no password: set SONETEL_PASSWORD, use --password-stdin, or run on a terminal to be asked')
}

function describeExpiry(exp) {
  if (typeof exp !== 'number') return 'no expiry (no exp claim)'
  const iso = new Date(exp * 1000).toISOString()
  let left = Math.floor(exp - Date.now() / 1000)
  const past = left < 0
  left = Math.abs(left)
  const parts = [[Math.floor(left / 86400), 'day'], [Math.floor((left % 86400) / 3600), 'hour'], [Math.floor((left % 3600) / 60), 'minute']]
    .filter(([n]) => n > 0).slice(0, 2).map(([n, unit]) => `${n} ${unit}${n === 1 ? '' : 's'}`)
  const words = parts.length ? parts.join(' ') : 'less than a minute'
  return past ? `expired ${words} ago (${iso})` : `expires in ${words} (${iso})`
}

function print(token, opts) {
  process.stdout.write(opts.json ? JSON.stringify(token, null, 2) + '\n' : token.access_token + '\n')
}

async function main(argv) {
  const opts = parseArgs(argv)
  if (opts.version) return void process.stdout.write(`sonetel-auth ${version}\n`)
  const [command, ...rest] = opts.positional
  if (opts.help) return void process.stdout.write(USAGE)
  if (!command) throw new UsageError('no command given')
  if (command === 'token') {
    if (rest.length) throw new UsageError('token takes no arguments')
    const username = opts.username ?? process.env.SONETEL_USERNAME
    if (!username) throw new UsageError('no user name: set SONETEL_USERNAME or use --username')
    const request = requestOptions(opts)
    print(await createAccessToken(username, await password(opts), request), opts)
  } else if (command === 'refresh') {
    if (rest.length) throw new UsageError('refresh takes the refresh token from SONETEL_REFRESH_TOKEN or standard input, not from an argument')
    const request = requestOptions(opts)
    const refreshToken = process.env.SONETEL_REFRESH_TOKEN || (process.stdin.isTTY ? '' : (await readStdin()).trim())
    if (!refreshToken) throw new UsageError('no refresh token: set SONETEL_REFRESH_TOKEN or pipe it to standard input')
    print(await refreshAccessToken(refreshToken, request), opts)
  } else if (command === 'decode') {
    if (rest.length > 1) throw new UsageError('decode takes at most one token')
    const token = rest[0] ?? (process.stdin.isTTY ? '' : (await readStdin()).trim())
    if (!token) throw new UsageError('no token: give it as an argument or on standard input')
    const claims = decodeAccessToken(token)
    process.stdout.write(JSON.stringify(claims, null, 2) + '\n')
    process.stdout.write(`${describeExpiry(claims.exp)}\n`)
  } else {
    throw new UsageError(`unknown command ${command}`)
  }
}

function exitCodeFor(err) {
  if (err instanceof UsageError) return EXIT.usage
  // Rate limited or timed out at the server: try later, whatever the body said.
  if (err?.status === 429 || err?.status === 408) return EXIT.network
  switch (err?.code) {
    case 'ERR_INVALID_ARG_TYPE':
    case 'ERR_INVALID_ARG_VALUE':
      return EXIT.usage
    case 'ERR_SONETEL_AUTH':
      return EXIT.refused
    case 'ERR_SONETEL_NETWORK':
    case 'ERR_SONETEL_TIMEOUT':
      return EXIT.network
    case 'ERR_SONETEL_HTTP':
    case 'ERR_SONETEL_RESPONSE':
      return EXIT.answer
    default:
      return EXIT.other
  }
}

main(process.argv.slice(2)).catch((err) => {
  const code = exitCodeFor(err)
  const tag = err instanceof UsageError ? " (see 'sonetel-auth --help')" : err?.code ? ` (${err.code})` : ''
  // One line, no stack; the addon's messages never carry a secret.
  process.stderr.write(`sonetel-auth: ${String(err?.message ?? err).split('\n')[0]}${tag}\n`)
  process.exitCode = code
})
