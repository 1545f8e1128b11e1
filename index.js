'use strict'
// sonetel-auth: the JavaScript face is in src/face/, its types in index.d.ts, the native
// engine in src/binding/ and src/core/ (Rust).
module.exports = require('./src/face/index.js')
