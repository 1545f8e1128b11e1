'use strict'
// Listening to a caller's AbortSignal. A native AbortSignal gets one follower of ours
// (AbortSignal.any, kept while the caller's signal lives), which Node aborts without
// dispatching through the caller's listeners: one that calls stopImmediatePropagation()
// cannot stop it, our listeners gather on it (no MaxListenersExceededWarning), and a
// long-lived signal gains one follower, not one per call. Any other signal (a polyfill's,
// another realm's) is listened on directly.

const { setMaxListeners } = require('node:events')

const { bare, argValueError } = require('./errors.js')

const NativeSignal = AbortSignal
// Listener options with nothing inherited (an Object.prototype.signal would remove it).
const ONCE = bare({ once: true })
const any = AbortSignal.any
const followers = new WeakMap()

function target(signal) {
  if (typeof any !== 'function' || !(signal instanceof NativeSignal)) return signal
  let own = followers.get(signal)
  if (own === undefined) {
    own = any.call(NativeSignal, [signal])
    setMaxListeners(0, own)
    followers.set(signal, own)
  }
  return own
}

/**
 * For `native.call`: calls `onAbort` once when `signal` fires (at once if it has fired
 * already); returns the means to stop listening. Throws an argument error when the signal
 * cannot be listened on.
 */
function watcher(signal, path) {
  if (signal === undefined) return undefined
  return (onAbort) => {
    if (aborted(signal)) {
      onAbort()
      return undefined
    }
    let on
    try {
      on = target(signal)
    } catch {
      on = signal
    }
    const listener = () => onAbort()
    try {
      on.addEventListener('abort', listener, ONCE)
    } catch {
      throw argValueError(`${path}.signal.addEventListener could not be called`)
    }
    return () => {
      try {
        on.removeEventListener('abort', listener)
      } catch {
        // A polyfill's signal that cannot remove: its listener stays, and does nothing.
      }
    }
  }
}

/** The signal's reason, read without letting a throwing getter escape. */
function reason(signal) {
  try {
    return signal.reason
  } catch {
    return undefined
  }
}

/** Whether it has fired, read the same way. */
function aborted(signal) {
  try {
    return signal.aborted === true
  } catch {
    return false
  }
}

module.exports = { watcher, reason, aborted }
