// A native addon must never take its host down. Worker threads that end with calls in
// flight, the addon loaded only in workers, hostile values and a hostile environment,
// unbounded native resources, one endpoint starving another, and abort signals that
// other listeners interfere with. Crash-prone scenarios run in a child process, several
// times, and the assertions are on its exit signal, status and output.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { addon, rejection, startSonetel, USER, PASSWORD } from './helpers/common.mjs'
import { clean, outcome } from './helpers/child.mjs'

const { createAccessToken, decodeAccessToken } = addon
const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

/** Runs a fixture in a child process; resolves with its status, signal and output. */
const child = (name, args = [], env = {}, timeoutMs = 300_000) =>
  outcome(process.execPath, ['--expose-gc', fixture(name), ...args], { env: { ...process.env, SONETEL_AUTH_UNDER_TEST: '', ...env }, timeoutMs })

function assertChurn(out, what) {
  assert.equal(out.mainFailures.length, 0, `${what}: main-thread calls failed: ${out.mainFailures}`)
  for (const b of out.busy) {
    assert.deepEqual(b.failed, [], `${what}: calls in a worker that kept running failed`)
    assert.ok(b.ok > 0, `${what}: the busy worker made calls`)
  }
  assert.ok(out.fdsAfter <= out.fdsBefore, `${what}: descriptors ${out.fdsBefore} → ${out.fdsAfter}`)
  assert.ok(out.threadsAfter <= out.threadsBefore, `${what}: threads ${out.threadsBefore} → ${out.threadsAfter}: ${out.threadNamesAfter}`)
  assert.equal(out.runtimeThreads, 1, `${what}: one runtime thread for the whole process`)
}

describe('worker threads that end while calls are in flight', () => {
  for (const mode of ['terminate', 'exit', 'throw', 'oom', 'piscina']) {
    for (const mainLoads of [true, false]) {
      test(`${mode}, the main thread ${mainLoads ? 'using the addon too' : 'never loading it'}: the process lives on, 2 runs`, async () => {
        for (let run = 1; run <= 2; run++) {
          const out = clean(await child('worker-churn.cjs', [], { MODES: mode, WORKERS: '8', PARALLEL: '2', BUSY: '1', MAIN_LOADS: mainLoads ? '1' : '0' }), `${mode} run ${run}`)
          assert.equal(out.ended[mode], 8)
          assertChurn(out, `${mode} run ${run}`)
        }
      })
    }
  }

  for (const mainLoads of [true, false]) {
    test(`churn: 200 workers ended in every way while others keep calling (main ${mainLoads ? 'uses' : 'never loads'} the addon)`, async () => {
      const out = clean(await child('worker-churn.cjs', [], { WORKERS: '200', PARALLEL: '4', BUSY: '2', MAIN_LOADS: mainLoads ? '1' : '0' }), 'churn')
      assert.equal(Object.values(out.ended).reduce((a, b) => a + b), 200)
      for (const mode of ['terminate', 'exit', 'throw', 'oom', 'piscina']) assert.equal(out.ended[mode], 40, mode)
      assertChurn(out, 'churn')
    })
  }
})

describe('the addon loaded only in worker threads', () => {
  test('two workers in turn, each only loading it: no crash, 5 runs', async () => {
    for (let run = 1; run <= 5; run++) {
      const out = clean(await child('workers-only.cjs'), `run ${run}`)
      assert.equal(out.loadedInMain, false)
      assert.equal(out.reports.length, 2)
    }
  })

  test('the runtime is made once per process and outlives the worker that made it', async () => {
    const out = clean(await child('workers-only.cjs', [], { CALL: '1', WORKERS: '3' }), 'runtime')
    const [first, ...later] = out.reports
    assert.equal(first.type, 'bearer')
    assert.equal(first.runtimeThreads.length, 1, 'one runtime thread')
    for (const r of later) {
      assert.equal(r.type, 'bearer')
      assert.deepEqual(r.runtimeThreads, first.runtimeThreads, 'the same runtime thread serves later workers')
    }
  })
})

describe('a hostile environment', () => {
  const scenario = async (name) => {
    const run = await child('hostile.cjs', [name], {}, 120_000)
    // A getter that re-enters a call must not recurse (it did, when the face read globals per call).
    assert.doesNotMatch(run.stderr, /Maximum call stack|Exception in PromiseRejectCallback/, `${name}: ${run.stderr.slice(0, 500)}`)
    const out = clean(run, name)
    for (const o of out.outcomes) assert.equal(o.settled, true, `${name}: "${o.label}" never settled`)
    assert.deepEqual(out.uncaught, [], `${name}: uncaught exceptions`)
    assert.deepEqual(out.unhandled, [], `${name}: unhandled rejections`)
    return { ...out, by: Object.fromEntries(out.outcomes.map((o) => [o.label, o])) }
  }

  test('Object.prototype.tokenUrl never redirects the credentials', async () => {
    const out = await scenario('polluted-tokenUrl')
    assert.equal(out.extra.attackerRequests, 0, 'the polluted tokenUrl got requests')
    for (const o of out.outcomes) assert.notEqual(o.how, 'resolved', `${o.label} used the polluted URL`)
  })

  test('Object.prototype.toJSON never redirects the credentials (options cross as JSON)', async () => {
    const out = await scenario('polluted-toJSON')
    assert.equal(out.extra.attackerRequests, 0, 'the password went to the polluted tokenUrl')
    assert.equal(out.by.createAccessToken.how, 'resolved')
    assert.equal(out.by.manager.how, 'resolved')
  })

  test('Object.prototype.onToken never receives a token', async () => {
    const out = await scenario('polluted-onToken')
    assert.equal(out.by.manager.how, 'resolved')
    assert.equal(out.extra.leaked, 0)
  })

  test('Object.prototype.proxy never sees the traffic', async () => {
    const out = await scenario('polluted-proxy')
    assert.equal(out.extra.proxied, 0)
    assert.equal(out.by.createAccessToken.how, 'resolved')
  })

  test('Object.prototype.ca adds no trust', async () => {
    const out = await scenario('polluted-ca')
    assert.equal(out.by.createAccessToken.code, 'ERR_SONETEL_NETWORK')
  })

  test('Object.prototype.signal, token, timeoutMs and refresh are not options', async () => {
    const out = await scenario('polluted-signal-and-token')
    assert.equal(out.by.createAccessToken.how, 'resolved')
    assert.equal(out.by.manager.how, 'resolved')
    assert.notEqual(out.by.manager.value, 'polluted')
  })

  const everyFailure = (out) => {
    const expect = {
      'bad argument': ['rejected', 'ERR_INVALID_ARG_TYPE'],
      'refused password': ['rejected', 'ERR_SONETEL_AUTH'],
      aborted: ['rejected', 'ABORT_ERR'],
      'pre-aborted': ['rejected', 'ABORT_ERR'],
      'decode throws': ['threw', 'ERR_INVALID_ARG_VALUE'],
      'constructor throws': ['threw', 'ERR_INVALID_ARG_TYPE'],
      'manager refused': ['rejected', 'ERR_SONETEL_AUTH'],
    }
    for (const [label, [how, code]] of Object.entries(expect)) {
      const o = out.by[label]
      assert.equal(o.how, how, `${label}: ${JSON.stringify(o)}`)
      assert.equal(o.code, code, `${label}: ${JSON.stringify(o)}`)
      assert.equal(o.isError, true, label)
    }
    assert.equal(out.by['bad argument'].isTypeError, true)
    assert.equal(out.by['refused password'].status, 400)
    assert.equal(out.by['refused password'].error, 'invalid_grant')
    assert.equal(out.by.aborted.name, 'AbortError')
    assert.equal(out.by.aborted.hasCause, true)
    assert.equal(out.by.success.how, 'resolved')
  }

  test('throwing setters on Object.prototype (code, status, cause, name, …): every call settles with our code', async () => {
    everyFailure(await scenario('throwing-setters'))
  })

  test('Object.prototype.get (every descriptor an accessor): errors still carry code, name and cause', async () => {
    everyFailure(await scenario('descriptor-get'))
  })

  test('a frozen Error.prototype: errors still carry code, name and cause', async () => {
    everyFailure(await scenario('frozen-error-prototype'))
  })

  test('Proxies, throwing getters and a throwing toJSON end in a settled call with an argument code', async () => {
    const out = await scenario('proxies')
    for (const o of out.outcomes) {
      assert.ok(['rejected', 'threw'].includes(o.how), `${o.label}: ${o.how}`)
      assert.match(String(o.code), /^ERR_INVALID_ARG_(TYPE|VALUE)$/, `${o.label}: ${JSON.stringify(o)}`)
    }
  })

  test('a getter that calls back into the addon while it first sets up: every call settles, the process exits', async () => {
    const out = await scenario('reentrant-first-use')
    assert.equal(out.by['outer call'].how, 'resolved')
    assert.ok(['resolved', 'rejected'].includes(out.by['inner call'].how))
    assert.equal(out.by['a later call'].how, 'resolved')
  })

  test('signal getters and AbortSignal.any that call back into the addon: no abort, every call settles', async () => {
    const out = await scenario('reentrant-signal')
    assert.ok(out.outcomes.length >= 3)
    assert.equal(out.by['outer call'].how, 'resolved')
    assert.equal(out.by['with AbortSignal.any re-entering'].how, 'resolved')
  })

  test('an onToken that returns a rejecting promise with its own catch and then, or a broken thenable: reported, never unhandled', async () => {
    const out = await scenario('onToken-thenables')
    for (const o of out.outcomes) assert.equal(o.how, 'resolved', o.label)
    assert.equal(out.extra.onTokenFailed, 3)
  })

  test('options that are not a plain object (a URL, a Map, a class instance) are ERR_INVALID_ARG_TYPE, not "no options"', async () => {
    const out = await scenario('not-plain-options')
    for (const label of ['a URL', 'a Map', 'a class instance', 'a Date']) {
      assert.equal(out.by[label].code, 'ERR_INVALID_ARG_TYPE', label)
    }
    assert.equal(out.by['null prototype'].how, 'resolved')
  })

  test('a duck-typed signal (a polyfill\'s) is listened on directly and aborts the call', async () => {
    const out = await scenario('duck-signal')
    assert.equal(out.by['a duck-typed signal'].code, 'ABORT_ERR')
  })

  test('a cyclic or deeply nested stored token is ERR_INVALID_ARG_VALUE, not a stack overflow', async () => {
    const out = await scenario('cyclic-and-deep-token')
    assert.equal(out.outcomes.length, 4)
    for (const o of out.outcomes) {
      assert.equal(o.how, 'threw', o.label)
      assert.equal(o.code, 'ERR_INVALID_ARG_VALUE', `${o.label}: ${o.message}`)
    }
  })
})

test('per-call proxies and CA bundles do not grow native memory or descriptors without bound', async () => {
  const out = clean(await child('many-clients.cjs', [], { CALLS: '1500' }), 'many clients')
  assert.equal(out.failed, 0)
  assert.ok(out.proxied > 600, 'the proxy carried the proxied calls')
  assert.ok(out.fdGrowth < 100, `descriptors grew by ${out.fdGrowth}`)
  assert.ok(out.rssGrowthMiB < 100, `RSS grew by ${out.rssGrowthMiB.toFixed(1)} MiB`)
})

describe('in-process', () => {
  let healthy
  let hanging
  before(async () => {
    healthy = await startSonetel()
    hanging = (await startSonetel()).fault('hang')
  })
  after(async () => {
    await healthy.close()
    await hanging.close()
  })

  test('one endpoint that hangs 300 calls does not starve a healthy one', async () => {
    const ac = new AbortController()
    const stuck = Array.from({ length: 300 }, () => createAccessToken(USER, PASSWORD, { tokenUrl: hanging.tokenUrl, timeoutMs: 120_000, signal: ac.signal }).catch((e) => e.code))
    try {
      const token = await createAccessToken(USER, PASSWORD, { tokenUrl: healthy.tokenUrl, timeoutMs: 60_000 })
      assert.equal(token.token_type, 'bearer')
    } finally {
      ac.abort()
    }
    const codes = await Promise.all(stuck)
    assert.ok(codes.every((c) => c === 'ABORT_ERR'), 'the hanging calls end when aborted')
  })

  test('decodeAccessToken returns what JSON.parse of the payload gives: big integers as numbers, __proto__ as an own key', () => {
    const b64 = (s) => Buffer.from(s).toString('base64url')
    const payload = '{"exp":4294967296,"iat":9007199254740993,"neg":-4294967297,"__proto__":{"polluted":true},"acc_id":123456789012}'
    const claims = decodeAccessToken(`${b64('{"alg":"RS256"}')}.${b64(payload)}.sig`)
    assert.deepEqual(claims, JSON.parse(payload))
    assert.equal(typeof claims.exp, 'number')
    assert.equal(claims.exp * 1000, 4294967296000)
    assert.equal(typeof claims.iat, 'number')
    assert.equal(Object.getPrototypeOf(claims), Object.prototype)
    assert.ok(Object.prototype.hasOwnProperty.call(claims, '__proto__'))
    assert.equal(claims.polluted, undefined)
  })

  test('an earlier abort listener that calls stopImmediatePropagation() does not stop the abort', async () => {
    const ac = new AbortController()
    ac.signal.addEventListener('abort', (e) => e.stopImmediatePropagation())
    const pending = createAccessToken(USER, PASSWORD, { tokenUrl: hanging.tokenUrl, timeoutMs: 10_000, signal: ac.signal })
    setTimeout(() => ac.abort(new Error('user left')), 20)
    const { err } = await rejection(pending, 'ABORT_ERR', { name: 'AbortError' })
    assert.equal(err.cause.message, 'user left')
  })

  test('a long-lived signal passed to many calls gains one follower, not one per call', async () => {
    const ac = new AbortController()
    const dependants = () => {
      const key = Object.getOwnPropertySymbols(ac.signal).find((s) => String(s).includes('kDependantSignals'))
      return key ? ac.signal[key]?.size ?? 0 : 0
    }
    for (let i = 0; i < 300; i++) await createAccessToken(USER, PASSWORD, { tokenUrl: healthy.tokenUrl, signal: ac.signal })
    assert.ok(dependants() <= 1, `${dependants()} followers on the signal`)
  })

  test('many calls sharing one signal print no MaxListenersExceededWarning', async () => {
    const warnings = []
    const onWarning = (w) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const ac = new AbortController()
      const calls = Array.from({ length: 30 }, () => createAccessToken(USER, PASSWORD, { tokenUrl: healthy.tokenUrl, signal: ac.signal }))
      await Promise.all(calls)
      const manager = new addon.TokenManager({ username: USER, password: PASSWORD, tokenUrl: healthy.tokenUrl })
      await Promise.all(Array.from({ length: 30 }, () => manager.getAccessToken({ signal: ac.signal })))
      await new Promise((r) => setImmediate(r))
      assert.deepEqual(warnings, [])
    } finally {
      process.off('warning', onWarning)
    }
  })
})

test('a polluted Object.prototype.NAPI_RS_NATIVE_LIBRARY_PATH (before require, or after it and before first use) chooses no binary', async () => {
  const { spawnSync } = await import('node:child_process')
  const root = fileURLToPath(new URL('..', import.meta.url))
  for (const when of ['before', 'after']) {
    const script = `
      const pollute = () => { Object.prototype.NAPI_RS_NATIVE_LIBRARY_PATH = '/nonexistent/evil.node' }
      if (${JSON.stringify(when)} === 'before') pollute()
      const { TokenManager } = require(${JSON.stringify(root)})
      pollute()
      try {
        new TokenManager({ username: 'me@example.com', password: 'x' }).close()
        console.log('loaded the package binary')
      } catch (e) {
        console.log(e.code + ' ' + e.message.split('\\n')[0])
      }`
    const { NAPI_RS_NATIVE_LIBRARY_PATH, ...env } = process.env
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, timeout: 60_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'loaded the package binary', `pollution ${when} require`)
  }
})
