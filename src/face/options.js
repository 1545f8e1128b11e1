'use strict'
// Reading what callers pass. Options are the own enumerable properties of an object whose
// prototype is null or an Object.prototype of any realm (Jest's, Vitest's, a vm
// context's); nothing on Object.prototype is ever read, and a name we do not know is an
// error that suggests the closest known one. Messages name the argument and its type,
// never its value (it may be a password). Intrinsics are taken once, at load.

const { argTypeError, argValueError } = require('./errors.js')

const { getPrototypeOf, getOwnPropertyDescriptor, keys, create } = Object
const { stringify } = JSON
const ObjectPrototype = Object.prototype
const { isArray } = Array
const functionSource = Function.prototype.toString
const objectSource = functionSource.call(Object)
const { isUint8Array } = require('node:util').types
const { isWellFormed } = String.prototype

/** Longest user name or password, in characters. */
const MAX_CREDENTIAL = 8 * 1024
/** Longest token (access or refresh), in characters; real ones are about 1 KiB. */
const MAX_TOKEN = 64 * 1024
/** Largest `timeoutMs` and the like: what Node's own timers accept. */
const MAX_TIMER_MS = 2_147_483_647

/** How a value is named in "received …". */
function typeName(value) {
  if (value === null) return 'null'
  if (isArray(value)) return 'an array'
  return typeof value
}

/** Whether `proto` is the Object.prototype of some realm. */
function isObjectPrototype(proto) {
  if (proto === ObjectPrototype) return true
  try {
    if (getPrototypeOf(proto) !== null) return false
    const ctor = getOwnPropertyDescriptor(proto, 'constructor')?.value
    return typeof ctor === 'function' && getOwnPropertyDescriptor(ctor, 'prototype')?.value === proto &&
      functionSource.call(ctor) === objectSource
  } catch {
    return false
  }
}

/** Levenshtein distance, for "did you mean". */
function distance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 0; i < a.length; i++) {
    const next = [i + 1]
    for (let j = 0; j < b.length; j++) {
      next.push(Math.min(row[j] + (a[i] === b[j] ? 0 : 1), row[j + 1] + 1, next[j] + 1))
    }
    row = next
  }
  return row[b.length]
}

/**
 * The name in `known` the caller most likely meant (case aside): the shortest one that
 * `name` is the start of (`--user` for `--username`), else the closest by edits if one
 * is close enough to be a typo.
 */
function closest(name, known) {
  const typed = name.toLowerCase()
  if (typed.length >= 2) {
    const started = known.filter((k) => k.toLowerCase().startsWith(typed)).sort((a, b) => a.length - b.length)
    if (started.length > 0) return started[0]
  }
  let best
  let bestDistance = 4
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [k, d]
  }
  return best
}

/** "options.tokeUrl is not an option (did you mean tokenUrl?)". */
function unknownOption(path, name, known) {
  const shown = String(name).slice(0, 64)
  const best = closest(shown, known)
  const hint = best !== undefined ? ` (did you mean ${best}?)` : ` (known options: ${known.join(', ')})`
  return argValueError(`${path}.${shown} is not an option${hint}`)
}

/**
 * The fields given in an options object (not `undefined`), as a null-prototype object;
 * undefined for `undefined`/`null`. With `known`, any other name is an error.
 */
function readOptions(value, path, known) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object') throw argTypeError(`${path} must be an object, received ${typeName(value)}`)
  let names
  try {
    if (isArray(value)) throw argTypeError(`${path} must be an object, received an array`)
    const proto = getPrototypeOf(value)
    if (proto !== null && !isObjectPrototype(proto)) {
      throw argTypeError(`${path} must be a plain object (an object literal), received an instance of a class`)
    }
    names = keys(value)
  } catch (e) {
    if (e?.code === 'ERR_INVALID_ARG_TYPE') throw e
    throw argValueError(`${path} could not be read`)
  }
  const fields = create(null)
  for (const name of names) {
    if (known !== undefined && !known.includes(name)) throw unknownOption(path, name, known)
    let field
    try {
      field = value[name]
    } catch {
      throw argValueError(`${path}.${name} could not be read (its getter threw)`)
    }
    if (field !== undefined) fields[name] = field
  }
  return fields
}

/** A non-empty, well-formed string without NUL, at most `max` characters. */
function text(value, what, max = MAX_CREDENTIAL) {
  if (typeof value !== 'string') throw argTypeError(`${what} must be a string, received ${typeName(value)}`)
  checkText(value, what, max)
  return value
}

function checkText(value, what, max) {
  if (value.length === 0) throw argValueError(`${what} must not be empty`)
  if (value.length > max) throw argValueError(`${what} is longer than ${max} characters`)
  if (value.includes('\0')) throw argValueError(`${what} must not contain NUL characters`)
  if (!isWellFormed.call(value)) throw argValueError(`${what} is not valid Unicode (it has an unpaired surrogate)`)
}

/** A string, or a Uint8Array of UTF-8 (checked natively) that the app can wipe later. */
function secretBytes(value, what, max = MAX_CREDENTIAL) {
  if (isUint8Array(value)) {
    if (value.length === 0) throw argValueError(`${what} must not be empty`)
    if (value.length > max) throw argValueError(`${what} is longer than ${max} bytes`)
    return Buffer.from(value.buffer, value.byteOffset, value.length)
  }
  if (typeof value !== 'string') throw argTypeError(`${what} must be a string or a Buffer, received ${typeName(value)}`)
  return text(value, what, max)
}

function string(fields, name, path) {
  const v = fields[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw argTypeError(`${path}.${name} must be a string, received ${typeName(v)}`)
  return v
}

function boolean(fields, name, path) {
  const v = fields[name]
  if (v === undefined) return undefined
  if (typeof v !== 'boolean') throw argTypeError(`${path}.${name} must be a boolean, received ${typeName(v)}`)
  return v
}

/** Milliseconds: finite, above 0 (or from 0), at most what a Node timer takes. */
function millis(fields, name, path, aboveZero) {
  const v = fields[name]
  if (v === undefined) return undefined
  if (typeof v !== 'number') throw argTypeError(`${path}.${name} must be a number, received ${typeName(v)}`)
  if (!(aboveZero ? v > 0 : v >= 0) || !(v <= MAX_TIMER_MS)) {
    throw argValueError(`${path}.${name} must be a number of milliseconds ${aboveZero ? 'above 0' : 'from 0'} up to ${MAX_TIMER_MS}`)
  }
  return v
}

/** A signal: an AbortSignal of any realm, or anything shaped like one (a polyfill's). */
function signal(fields, path) {
  const v = fields.signal
  if (v === undefined) return undefined
  let shaped = false
  try {
    shaped = typeof v === 'object' && v !== null && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function'
  } catch {
    throw argValueError(`${path}.signal could not be read`)
  }
  if (!shaped) throw argTypeError(`${path}.signal must be an AbortSignal, received ${typeName(v)}`)
  return v
}

/** `ca`: PEM text, a Uint8Array of it, or an array of either; as strings. */
function ca(fields, path) {
  const v = fields.ca
  if (v === undefined) return undefined
  const one = (item, what) => {
    if (typeof item === 'string') return item
    if (isUint8Array(item)) return Buffer.from(item.buffer, item.byteOffset, item.length).toString('latin1')
    throw argTypeError(`${what} must be a PEM string or Buffer, received ${typeName(item)}`)
  }
  if (!isArray(v)) return [one(v, `${path}.ca`)]
  let items
  try {
    if (v.length > 1000) throw argValueError(`${path}.ca has more than 1000 items`)
    items = Array.from(v)
  } catch (e) {
    if (e?.code === 'ERR_INVALID_ARG_VALUE') throw e
    throw argValueError(`${path}.ca could not be read`)
  }
  return items.map((item, i) => one(item, `${path}.ca[${i}]`))
}

/** No options given: nothing to read, and nothing inherited either. */
const NO_FIELDS = Object.freeze(create(null))

const REQUEST_OPTIONS = ['tokenUrl', 'timeoutMs', 'refresh', 'ca', 'proxy', 'signal']

/**
 * JSON text of our own flat object (strings, numbers, booleans, lists of strings):
 * `JSON.stringify` of an object would look up a `toJSON` that someone may have put on
 * Object.prototype (to swap the tokenUrl, say); of a primitive, it looks up nothing.
 */
function encode(object) {
  let out = ''
  for (const key of keys(object)) {
    const value = object[key]
    if (value === undefined) continue
    let text
    if (isArray(value)) {
      text = ''
      for (let i = 0; i < value.length; i++) text += (i > 0 ? ',' : '') + stringify(value[i])
      text = `[${text}]`
    } else {
      text = stringify(value)
    }
    out += `${out === '' ? '' : ','}${stringify(key)}:${text}`
  }
  return `{${out}}`
}

/** The options of every call that asks the token endpoint, checked: the JSON the binding reads. */
function requestConfig(fields = NO_FIELDS, path) {
  // Read by our own code only, field by field: every field is its own property.
  return {
    tokenUrl: string(fields, 'tokenUrl', path),
    timeoutMs: millis(fields, 'timeoutMs', path, true),
    refresh: boolean(fields, 'refresh', path),
    ca: ca(fields, path),
    proxy: string(fields, 'proxy', path),
  }
}

// The last request options as JSON: apps pass the same options (a `ca` of a few KiB among
// them) on every call, and text made once is text not made again.
let last

/** `requestConfig` as the JSON text the binding reads. */
function requestJson(fields, path) {
  const c = requestConfig(fields, path)
  if (last !== undefined && last.tokenUrl === c.tokenUrl && last.timeoutMs === c.timeoutMs &&
      last.refresh === c.refresh && last.proxy === c.proxy && sameList(last.ca, c.ca)) {
    return last.json
  }
  const json = encode(c)
  last = { ...c, json }
  return json
}

function sameList(a, b) {
  if (a === undefined || b === undefined) return a === b
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

module.exports = {
  MAX_CREDENTIAL, MAX_TOKEN, REQUEST_OPTIONS, NO_FIELDS,
  typeName, closest, readOptions, text, secretBytes, string, boolean, millis, signal, requestConfig, requestJson, encode,
}
