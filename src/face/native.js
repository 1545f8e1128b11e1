'use strict'
// The native engine under the face: finding this platform's binary, and the one
// completion path every call shares. A call crosses into Rust once (start) and comes back
// once, as text (`v…` a value as JSON, `e…` an error descriptor), through `deliver`.

const fs = require('node:fs')
const path = require('node:path')

const { PLATFORMS, localBuild, platformPackage } = require('./binary.js')

/** This machine's platform as napi-rs names its builds (`linux-x64-gnu`, …). */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = /** @type {any} */ (typeof process.report?.getReport === 'function' ? process.report.getReport() : null)
    return !report?.header?.glibcVersionRuntime
  }
}

/** Loads a .node file by path, past any bundler's `require`. */
function openFile(file) {
  try {
    const module = { exports: {} }
    process.dlopen(module, path.toNamespacedPath(path.resolve(file)))
    return module.exports
  } catch (e) {
    return e
  }
}

const isBinding = (value) => typeof value?.Channel === 'function'
const notThere = (e) => e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ENOENT' || /cannot open shared object file: No such file/.test(String(e?.message))

/**
 * The binary: `NAPI_RS_NATIVE_LIBRARY_PATH`, a local build, or the platform package.
 * @returns {typeof import('../binding/native')}
 */
function load() {
  const name = platformName()
  const tried = []
  // An own property only: process.env falls back to Object.prototype, and a polluted
  // prototype must not choose the file that is loaded into the process.
  const explicit = Object.getOwnPropertyDescriptor(process.env, 'NAPI_RS_NATIVE_LIBRARY_PATH')?.value
  /** @type {Array<[string, () => unknown]>} */
  const attempts = explicit
    ? [[`NAPI_RS_NATIVE_LIBRARY_PATH (${explicit})`, () => openFile(explicit)]]
    : [[`a local build (sonetel-auth.${name}.node)`, () => localBuild(name)], [`the package sonetel-auth-${name}`, () => platformPackage(name)]]
  for (const [where, attempt] of attempts) {
    let found = attempt()
    // A bundler's file loader hands over the path it copied the binary to.
    if (typeof found === 'string') found = openFile(path.resolve(__dirname, found))
    if (isBinding(found)) return /** @type {any} */ (found)
    if (found !== undefined) tried.push(found instanceof Error ? found : new Error(`${where} is not a sonetel-auth binary`))
  }
  throw noBinary(name, explicit, tried)
}

/** The error a user sees when no binary loads: what is missing, why, and what to run. */
function noBinary(name, explicit, tried) {
  const [os, cpu, libc] = name.split('-')
  const libcFlag = os === 'linux' ? ` --libc=${libc === 'musl' ? 'musl' : 'glibc'}` : ''
  const broken = tried.find((e) => !notThere(e))
  const packageDir = broken || explicit ? undefined : installedAt(name)
  let message
  if (explicit) {
    message = `sonetel-auth could not load the binary NAPI_RS_NATIVE_LIBRARY_PATH names (${explicit}): ${firstLine(tried[0])}`
  } else if (!PLATFORMS.includes(name)) {
    message = `sonetel-auth has no native binary for this platform (${name}).\n` +
      `It is published for: ${PLATFORMS.join(', ')}.\n` +
      'Fix: build it from the source (npm run build) and point NAPI_RS_NATIVE_LIBRARY_PATH at the .node file it makes.'
  } else if (packageDir !== undefined) {
    message = `sonetel-auth found the package sonetel-auth-${name} (${packageDir}) but not its binary, sonetel-auth.${name}.node.\n` +
      'Likely cause: an incomplete install or a copy that left the .node file out (a Docker COPY, a file filter, a bundler).\n' +
      `Fix: reinstall it (npm install --include=optional), or point NAPI_RS_NATIVE_LIBRARY_PATH at a sonetel-auth .node file.`
  } else if (broken) {
    message = `sonetel-auth found its native binary for ${name} but could not load it: ${firstLine(broken)}\n` +
      'Likely cause: node_modules was copied from another OS, CPU or C library (a Mac or Windows host, an Alpine or a Debian image), or this system\'s C library is older than the binary needs.\n' +
      `Fix: reinstall on this machine (rm -rf node_modules && npm install), or, when the image is built elsewhere, npm install --os=${os} --cpu=${cpu}${libcFlag} there.`
  } else {
    message = `sonetel-auth needs the package sonetel-auth-${name} (its native binary for this platform), and it is not installed.\n` +
      'Likely cause: npm skipped optional dependencies (npm install --omit=optional, or optional=false in .npmrc), or package-lock.json or node_modules was made on another OS or CPU.\n' +
      `Fix: npm install --include=optional on this machine; when the image is built on another one, npm install --os=${os} --cpu=${cpu}${libcFlag} there; ` +
      'or point NAPI_RS_NATIVE_LIBRARY_PATH at a sonetel-auth .node file.'
  }
  const error = /** @type {Error & { code?: string }} */ (new Error(message, {
    cause: new AggregateError(tried, 'every place the binary was looked for'),
  }))
  error.code = 'ERR_SONETEL_NO_BINARY'
  // Loggers serialise with JSON.stringify; the cause's attempts stay out of it.
  Object.defineProperty(error, 'toJSON', { value: () => ({ name: error.name, code: error.code, message: error.message }), writable: true, configurable: true })
  return error
}

/** Where the platform package is installed, looking as `require` would (by its package.json); else undefined. */
function installedAt(name) {
  for (const dir of /** @type {any} */ (module).paths ?? []) {
    const at = path.join(dir, `sonetel-auth-${name}`)
    try {
      if (fs.statSync(path.join(at, 'package.json')).isFile()) return at
    } catch {
      // Not here.
    }
  }
  return undefined
}

function firstLine(e) {
  return String(e?.message ?? e).split('\n')[0]
}

// Intrinsics as they were at load: a getter on globalThis must not run inside a call.
const { stringify } = JSON
const NativePromise = Promise

// The binary is opened at the first call, not at require: an import opens no native
// handle (a leak detector such as Jest's --detectOpenHandles reports none) and costs nothing.
/** @type {{ binding: typeof import('../binding/native'), channel: import('../binding/native').Channel } | undefined} */
let opened

/**
 * The binding and this instance's completion channel, opened on first use. Throws
 * `ERR_SONETEL_NO_BINARY` while no binary loads (each use looks again).
 */
function engine() {
  if (opened === undefined) {
    const binding = load()
    opened = { binding, channel: new binding.Channel(deliver) }
  }
  return opened
}

/** What a call settles with when its signal fired first. */
const ABORTED = Symbol('aborted')

// Calls and managers waiting for text, by id.
const waiting = new Map()
let lastId = 0
let running = 0

function deliver(ids, texts) {
  for (let i = 0; i < ids.length; i++) {
    const handler = waiting.get(ids[i])
    if (handler === undefined) continue
    try {
      handler(texts[i], ids[i])
    } catch {
      // A handler never throws on purpose; nothing may escape into the addon's callback.
    }
  }
}

/** An id no call or manager holds. */
function newId() {
  do lastId = (lastId + 1) >>> 0
  while (lastId === 0 || waiting.has(lastId))
  return lastId
}

/** Listens for `handler(text)` under `id` until `forget(id)`: a manager's events. */
function listen(id, handler) {
  waiting.set(id, handler)
}

function forget(id) {
  waiting.delete(id)
}

/** Text for a failure of the binding itself: a call must settle whatever happens. */
function internalText(message) {
  return `e{"code":"ERR_SONETEL_INTERNAL","message":${stringify(`internal error in sonetel-auth: ${message}`)}}`
}

/**
 * Runs `start(id)`: it returns the outcome's text now, or nothing and the outcome comes
 * through the channel. Resolves with the text (or what `collect(text, id)` makes of it,
 * while the batch is being delivered), or with ABORTED when `watch(onAbort)` (the
 * caller's signal) fires first; never rejects for a failure of the call. `group`, a Map,
 * holds the settle functions of the calls under way by id, so that an owner can end them.
 */
function call(start, watch, group, collect) {
  return new NativePromise((resolve) => {
    const id = newId()
    let unwatch
    let done = false
    const finish = (outcome) => {
      if (done) return
      done = true
      if (waiting.delete(id) && --running === 0) release()
      if (group !== undefined) group.delete(id)
      if (unwatch !== undefined) unwatch()
      resolve(outcome)
    }
    if (watch !== undefined) {
      unwatch = watch(() => {
        cancel(id)
        finish(ABORTED)
      })
      if (done) return
    }
    let now
    try {
      now = start(id)
    } catch (e) {
      now = internalText(String(e?.message ?? e))
    }
    if (now != null) {
      finish(collect === undefined ? now : collect(now, id))
      return
    }
    // Aborted while it started: the call was cancelled, nothing is to come.
    if (done) return
    // Results are delivered on this thread, later: registering now is in time.
    waiting.set(id, collect === undefined ? finish : (text) => finish(collect(text, id)))
    if (group !== undefined) group.set(id, finish)
    if (running++ === 0 && !held) {
      held = true
      hold(true)
    }
  })
}

// Whether the channel keeps the process alive: while calls are under way, and not a
// moment longer. Let go at once, not on a timer: a test framework's fake timers replace
// setImmediate and setTimeout, and a release that never runs keeps the test runner alive.
let held = false

function release() {
  if (held) {
    held = false
    hold(false)
  }
}

function hold(on) {
  try {
    engine().channel.hold(on)
  } catch {
    // The environment is going away.
  }
}

function cancel(id) {
  try {
    opened?.channel.cancel(id)
  } catch {
    // Nothing to stop.
  }
}

module.exports = { engine, call, cancel, listen, forget, newId, internalText, ABORTED }
