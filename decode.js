const { decodeAccessToken: d } = require('/work/main')
const b = (s) => Buffer.from(s).toString('base64url')
const h = b('{"alg":"none"}')
const cases = {
  sym: Symbol('x'), strObj: new String(h + '.' + b('{}') + '.x'), num: 1, undef: undefined,
  deep: h + '.' + b('{"a":' + '['.repeat(100000) + ']'.repeat(100000) + '}') + '.x',
  deep120: h + '.' + b('{"a":' + '['.repeat(120) + ']'.repeat(120) + '}') + '.x',
  proto: h + '.' + b('{"__proto__":{"polluted":1},"exp":1}') + '.x',
  bigNum: h + '.' + b('{"exp":1e999}') + '.x',
  dupKeys: h + '.' + b('{"exp":1,"exp":2}') + '.x',
  loneSurInPayload: h + '.' + b('{"a":"\\ud800"}') + '.x',
  invalidUtf8: h + '.' + Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url') + '.x',
  padded: h + '.' + Buffer.from('{}').toString('base64') + '.x',
  stdB64: h + '.' + Buffer.from('{"a":"???>>>"}').toString('base64') + '.x',
  empty3: '..', nul: h + '.' + b('{}') + '.\0', loneSur: h + '.e30.\ud800',
  maxLen: h + '.' + b('{"a":"' + 'x'.repeat(48000) + '"}') + '.x',
  overLen: 'a'.repeat(70000),
  headerArray: b('[]') + '.' + b('{}') + '.x',
  trailingGarbage: h + '.' + b('{} x') + '.x',
  bom: h + '.' + b('\ufeff{}') + '.x',
  ws: h + '.' + b('  {}  ') + '.x',
  whole: null,
}
for (const [k, v] of Object.entries(cases)) {
  try { const r = d(v); console.log(k.padEnd(18), 'OK', JSON.stringify(r).slice(0, 60), Object.getPrototypeOf(r) === Object.prototype) }
  catch (e) { console.log(k.padEnd(18), 'THROW', e.code, e.constructor.name, e.message.slice(0, 80)) }
}
console.log({}.polluted)
