// @ts-nocheck: the requires below name files and packages that exist only on their own
// platform, which is the point; there is nothing else here to check.
'use strict'

/** The platforms a binary is published for (package.json's `napi.targets`, as napi-rs names them). */
const PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']

// The binary is required by literal names, one per platform, so that a bundler sees the
// platform package (and a local build) as an ordinary dependency: esbuild's copy loader
// then puts the .node file beside the bundle. Each require sits in a try block: esbuild
// leaves one it cannot resolve to run time, where it fails like any missing module.
// webpack cannot take a .node file and warns for each package it cannot find, so under
// webpack (`typeof __webpack_require__`, which it settles at build time and so drops the
// other branch) the platform package is left to Node's own require at run time.

/** A local build in the package's root (`npm run build`). */
function localBuild(name) {
  if (typeof __webpack_require__ === 'function') return undefined
  else {
    try {
      switch (name) {
        case 'linux-x64-gnu': return require('../../sonetel-auth.linux-x64-gnu.node')
        case 'linux-arm64-gnu': return require('../../sonetel-auth.linux-arm64-gnu.node')
        case 'linux-x64-musl': return require('../../sonetel-auth.linux-x64-musl.node')
        case 'linux-arm64-musl': return require('../../sonetel-auth.linux-arm64-musl.node')
        case 'darwin-x64': return require('../../sonetel-auth.darwin-x64.node')
        case 'darwin-arm64': return require('../../sonetel-auth.darwin-arm64.node')
        case 'win32-x64-msvc': return require('../../sonetel-auth.win32-x64-msvc.node')
        default: return undefined
      }
    } catch (e) {
      return e
    }
  }
}

/** The platform package npm installs as an optional dependency. */
function platformPackage(name) {
  if (typeof __webpack_require__ === 'function') {
    try {
      return __non_webpack_require__(`sonetel-auth-${name}`)
    } catch (e) {
      return e
    }
  } else {
    try {
      switch (name) {
        case 'linux-x64-gnu': return require('sonetel-auth-linux-x64-gnu')
        case 'linux-arm64-gnu': return require('sonetel-auth-linux-arm64-gnu')
        case 'linux-x64-musl': return require('sonetel-auth-linux-x64-musl')
        case 'linux-arm64-musl': return require('sonetel-auth-linux-arm64-musl')
        case 'darwin-x64': return require('sonetel-auth-darwin-x64')
        case 'darwin-arm64': return require('sonetel-auth-darwin-arm64')
        case 'win32-x64-msvc': return require('sonetel-auth-win32-x64-msvc')
        default: return undefined
      }
    } catch (e) {
      return e
    }
  }
}

module.exports = { PLATFORMS, localBuild, platformPackage }
