#!/usr/bin/env node
'use strict'
// The sonetel-auth command: a Sonetel access token for shell scripts.
// Secrets come from the environment, standard input or a no-echo prompt, never from
// the command line (where `ps` and shell history would show them).

const { parseArgs } = require('node:util')
const { createAccessToken, refreshAccessToken, decodeAccessToken } = require('..')
const { closest } = require('../src/face/options.js')
const { version } = require('../package.json')

const USAGE = `Usage: sonetel-auth <command> [options]

Commands:
  token            Log in and print the access token.
                   The account e-mail comes from --username or SONETEL_USERNAME; the
                   password from SONETEL_PASSWORD, from standard input with
                   --password-stdin, or from a prompt (no echo) on a terminal.
  refresh          Print a new access token for the refresh token in
                   SONETEL_REFRESH_TOKEN or on standard input.
  decode [token]   Print a token's claims as JSON (the token from the argument or
                   standard input), and when it expires on standard error. The
                   signature is not checked.
  help             Show this help.

Options:
  --json               token, refresh: print the whole token response as JSON.
                       decode: print the claims only, no summary on standard error.
  --username <email>   The account e-mail (default: SONETEL_USERNAME).
  --password-stdin     Read the password from standard input.
  --token-url <url>    The token endpoint (default: SONETEL_TOKEN_URL, else Sonetel's).
  --timeout <ms>       Deadline for the request in milliseconds (default: 10000).
  -h, --help           Show this help.
  -v, --version        Show the version.

Standard output carries data only: a token, or JSON.
Exit codes: 0 done, 1 other error, 2 bad usage, 3 credentials refused,
4 network error, timeout or rate limit (try later), 5 unexpected answer from the server.
Example: TOKEN=$(SONETEL_USERNAME=me@example.com sonetel-auth token --password-stdin < pw.txt)
`

const EXIT = { usage: 2, refused: 3, network: 4, answer: 5, other: 1 }

class UsageError extends Error {}

const OPTIONS = {
  json: { type: 'boolean' },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'token-url': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  // Known, so that it can be refused with a reason rather than "unknown option".
  password: { type: 'string', short: 'p' },
}

/** The command line, with Node's own parser: unknown options and missing values are errors. */
function parse(argv) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    let message = String(err.message).replace(/\. To specify a positional argument.*$/s, '')
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      // Shown without anything after `=`: a value typed there may be a password.
      // Nor after ':' (`--passwd:secret`).
      const shown = (/'(-[^'=:]*)/.exec(message)?.[1] ?? '').slice(0, 40)
      const flag = shown.replace(/^-+/, '')
      const best = flag.length > 1 && closest(flag, Object.keys(OPTIONS))
      message = best ? `unknown option '${shown}' (did you mean --${best}?)` : `unknown option '${shown}'`
    }
    throw new UsageError(message)
  }
  if (parsed.values.password !== undefined) {
    throw new UsageError('a password is never taken from the command line; use SONETEL_PASSWORD, --password-stdin or the prompt')
  }
  return { ...parsed.values, positional: parsed.positionals }
}

/**
 * Where each value came from, so that an error names what the user set (`--token-url`,
 * `SONETEL_TOKEN_URL`) rather than the library option behind it (`options.tokenUrl`).
 */
function requestOptions(opts, sources) {
  const out = {}
  const tokenUrl = opts['token-url'] ?? process.env.SONETEL_TOKEN_URL
  if (tokenUrl !== undefined) {
    out.tokenUrl = tokenUrl
    sources['options.tokenUrl'] = opts['token-url'] !== undefined ? '--token-url' : 'SONETEL_TOKEN_URL'
  }
  if (opts.timeout !== undefined) {
    const ms = /^\d+(\.\d+)?$/.test(opts.timeout) ? Number(opts.timeout) : NaN
    if (!Number.isFinite(ms) || ms <= 0) throw new UsageError('--timeout must be a positive number of milliseconds')
    out.timeoutMs = ms
    sources['options.timeoutMs'] = '--timeout'
  }
  return out
}

/** An argument error's message, naming the flag or variable instead of the library option. */
function named(message, sources) {
  for (const [option, source] of Object.entries(sources)) {
    if (message.startsWith(option)) return source + message.slice(option.length)
  }
  return message
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
    // Echo off before the prompt shows: a password typed the moment it appears is not echoed.
    stdin.setRawMode(true)
    stderr.write(question)
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

async function password(opts, sources) {
  if (opts['password-stdin']) {
    sources.password = 'the password on standard input'
    return readStdin()
  }
  sources.password = 'SONETEL_PASSWORD'
  if (process.env.SONETEL_PASSWORD) return process.env.SONETEL_PASSWORD
  if (process.stdin.isTTY) {
    sources.password = 'the password typed'
    return prompt('Sonetel password: ')
  }
  throw new UsageError('no password: set SONETEL_PASSWORD, use --password-stdin, or run on a terminal to be asked')
}

function describeExpiry(exp) {
  if (typeof exp !== 'number') return 'no expiry (no exp claim)'
  const date = new Date(exp * 1000)
  if (Number.isNaN(date.getTime())) return `an exp claim (${exp}) that is no date`
  const iso = date.toISOString()
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

async function main(argv, sources) {
  const opts = parse(argv)
  if (opts.version && opts.positional.length > 0) throw new UsageError('--version takes no arguments')
  if (opts.version) return void process.stdout.write(`sonetel-auth ${version}\n`)
  const [command, ...rest] = opts.positional
  if (opts.help || command === 'help') return void process.stdout.write(USAGE)
  if (!command) throw new UsageError('no command given')
  if (command === 'token') {
    if (rest.length) throw new UsageError('token takes no arguments')
    const username = opts.username ?? process.env.SONETEL_USERNAME
    if (!username) throw new UsageError('no user name: set SONETEL_USERNAME or use --username')
    sources.username = opts.username !== undefined ? '--username' : 'SONETEL_USERNAME'
    const request = requestOptions(opts, sources)
    print(await createAccessToken(username, await password(opts, sources), request), opts)
  } else if (command === 'refresh') {
    if (rest.length) throw new UsageError('refresh takes the refresh token from SONETEL_REFRESH_TOKEN or standard input, not from an argument')
    const request = requestOptions(opts, sources)
    sources.refreshToken = process.env.SONETEL_REFRESH_TOKEN ? 'SONETEL_REFRESH_TOKEN' : 'the refresh token on standard input'
    const refreshToken = process.env.SONETEL_REFRESH_TOKEN || (process.stdin.isTTY ? '' : (await readStdin()).trim())
    if (!refreshToken) throw new UsageError('no refresh token: set SONETEL_REFRESH_TOKEN or pipe it to standard input')
    print(await refreshAccessToken(refreshToken, request), opts)
  } else if (command === 'decode') {
    if (rest.length > 1) throw new UsageError('decode takes at most one token')
    sources.token = rest[0] !== undefined ? 'the token' : 'the token on standard input'
    const token = rest[0] ?? (process.stdin.isTTY ? '' : (await readStdin()).trim())
    if (!token) throw new UsageError('no token: give it as an argument or on standard input')
    const claims = decodeAccessToken(token)
    process.stdout.write(JSON.stringify(claims, null, process.stdout.isTTY ? 2 : 0) + '\n')
    // The summary is for people: on standard error, so a pipe gets JSON only.
    if (!opts.json) process.stderr.write(`${describeExpiry(claims.exp)}\n`)
  } else {
    // Named only when it looks like a command: a password pasted in its place stays unprinted.
    const known = ['token', 'refresh', 'decode', 'help']
    if (!/^[a-z][a-z-]{0,19}$/.test(command)) throw new UsageError(`unknown command (commands: ${known.join(', ')})`)
    const best = closest(command, known)
    // And only when it is a typo of one: any other word may be a password typed in its place.
    throw new UsageError(best ? `unknown command ${command} (did you mean ${best}?)` : `unknown command (commands: ${known.join(', ')})`)
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

const sources = {}
main(process.argv.slice(2), sources).catch((err) => {
  const code = exitCodeFor(err)
  const tag = err instanceof UsageError ? " (see 'sonetel-auth --help')" : err?.code ? ` (${err.code})` : ''
  let message = String(err?.message ?? err).split('\n')[0]
  if (/^ERR_INVALID_ARG_/.test(err?.code)) message = named(message, sources)
  // One line, no stack; the addon's messages never carry a secret.
  process.stderr.write(`sonetel-auth: ${message}${tag}\n`)
  process.exitCode = code
})
