// Compiled once per JavaScript environment by src/binding/instance.rs (include_str!).
// `follow(signal)` gives the signal the addon listens on for a caller's AbortSignal: a
// signal of its own that follows the caller's (AbortSignal.any), made once per caller's
// signal and kept only as long as that signal lives (a WeakMap). Node aborts it without
// dispatching through the caller's listeners, so one that calls stopImmediatePropagation()
// cannot stop it; the addon's listeners gather on it, not on the app's signal (no
// MaxListenersExceededWarning); and a long-lived app signal gains one follower, not one
// per call. A signal that is not a native AbortSignal (a polyfill's, another realm's) is
// listened on directly.
(function (g) {
  'use strict'
  const AbortSignal = g.AbortSignal
  const any = AbortSignal && AbortSignal.any
  const followers = new g.WeakMap()
  const events = g.process && typeof g.process.getBuiltinModule === 'function' ? g.process.getBuiltinModule('node:events') : undefined
  const setMaxListeners = events && events.setMaxListeners

  function follow(signal) {
    if (typeof any !== 'function' || !(signal instanceof AbortSignal)) return signal
    let own = followers.get(signal)
    if (own === undefined) {
      own = any.call(AbortSignal, [signal])
      if (setMaxListeners) setMaxListeners(0, own)
      followers.set(signal, own)
    }
    return own
  }

  return { follow }
})(globalThis)
