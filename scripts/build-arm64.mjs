// npm run build:arm64: builds the aarch64-unknown-linux-gnu binary on an x86_64 Linux
// machine, from the package registries alone, into npm/linux-arm64-gnu (the package npm
// installs on 64-bit ARM Linux with glibc).
//
// The compiler is a Rust toolchain that has the aarch64 standard library: a rustup
// toolchain with `rustup target add aarch64-unknown-linux-gnu`, or Debian's rustc-web and
// cargo-web with libstd-rust-web-dev:arm64. The linker and C compiler (ring's C and
// assembly) are Debian's gcc-aarch64-linux-gnu. The build has its own target directory,
// so it never invalidates `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { EM_AARCH64, elfMachine } from './elf.mjs'

const TARGET = 'aarch64-unknown-linux-gnu'
// The target as cargo's variables name it (CARGO_TARGET_<T>_LINKER) and as the cc crate's do (CC_<t>).
const CARGO_T = TARGET.toUpperCase().replace(/-/g, '_')
const CC_T = TARGET.replace(/-/g, '_')
const root = fileURLToPath(new URL('..', import.meta.url))
const outDir = path.join(root, 'npm', 'linux-arm64-gnu')
const binary = path.join(outDir, 'sonetel-auth.linux-arm64-gnu.node')
const targetDir = path.join(root, 'target', 'arm64')
const DEBIAN = {
  rust: ['rustc-web', 'cargo-web', 'libstd-rust-web-dev:arm64'],
  gcc: ['gcc-aarch64-linux-gnu'],
}

function fail(message) {
  console.error(`build:arm64: ${message}`)
  process.exit(1)
}

const output = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

// The oldest Rust that builds this crate (Cargo.toml's rust-version).
const MIN_RUST = /^rust-version\s*=\s*"([\d.]+)"/m.exec(fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8'))[1]
const atLeast = (version, min) => {
  const [a, b] = [version, min].map((v) => v.split('.').map(Number))
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0)
  return true
}

/**
 * A rustc that can build for TARGET, with the cargo beside it. Returns { rustc, cargo,
 * version } or { problem } saying what the best candidate lacked.
 */
function findRust() {
  // What the caller chose, and only that; else the usual `rustc` (rustup's, with the target
  // added), then Debian's rustc-web, which installs to /usr/bin and is found even when
  // rustup's ~/.cargo/bin comes first on PATH.
  const candidates = process.env.RUSTC
    ? [{ rustc: process.env.RUSTC, cargo: process.env.CARGO ?? 'cargo' }]
    : [{ rustc: 'rustc', cargo: 'cargo' }, { rustc: '/usr/bin/rustc', cargo: '/usr/bin/cargo' }]
  let problem = `no Rust standard library for ${TARGET}`
  for (const c of candidates) {
    const sysroot = output(c.rustc, ['--print', 'sysroot'])
    if (!sysroot || !fs.existsSync(path.join(sysroot, 'lib', 'rustlib', TARGET, 'lib'))) continue
    const version = output(c.rustc, ['--version'])
    const number = /^rustc (\d+\.\d+\.\d+)/.exec(version ?? '')?.[1]
    if (!number || !atLeast(number, MIN_RUST)) {
      problem = `${c.rustc} is ${version}, and this crate needs Rust ${MIN_RUST} or newer ` +
        "(Debian 12's rustc-web is 1.96 in bookworm-security, 1.85 in bookworm)"
      continue
    }
    if (!output(c.cargo, ['--version'])) {
      problem = `${c.rustc} can build for ${TARGET}, but there is no ${c.cargo} beside it`
      continue
    }
    return { ...c, version }
  }
  return { problem: process.env.RUSTC ? `RUSTC=${process.env.RUSTC}: ${problem}` : problem }
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`cross-builds from x86_64 Linux only (this is ${process.platform}-${process.arch}); ` +
    'on an arm64 Linux machine, `npm run build` builds this binary natively.')
}

const rust = findRust()
const gcc = output('aarch64-linux-gnu-gcc', ['--version']) && 'aarch64-linux-gnu-gcc'
if (rust.problem || !gcc) {
  const missing = [...(rust.problem ? DEBIAN.rust : []), ...(gcc ? [] : DEBIAN.gcc)]
  fail([
    `${[rust.problem, !gcc && 'no aarch64 C compiler and linker (aarch64-linux-gnu-gcc)'].filter(Boolean).join('; ')}.`,
    'On Debian 12 (as root):',
    ...(rust.problem ? ['  dpkg --add-architecture arm64'] : []),
    '  apt-get update',
    `  apt-get install ${missing.join(' ')}`,
    ...(rust.problem ? [`Or, with rustup: rustup target add ${TARGET}`] : []),
    ...(rust.problem && process.env.RUSTC ? ['Or unset RUSTC, and a Rust that has it is looked for.'] : []),
  ].join('\n'))
}

// Flags meant for this machine's builds (RUSTFLAGS="-C target-cpu=native", CFLAGS="-march=…")
// are wrong for an ARM target; the target's own variables are the place for arm64 flags.
const hostOnly = ['RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'CARGO_BUILD_RUSTFLAGS', 'CFLAGS', 'CXXFLAGS']
const env = { ...process.env }
for (const name of hostOnly.filter((n) => env[n] !== undefined)) {
  console.error(`build:arm64: ignoring ${name} (for arm64 flags set CARGO_TARGET_${CARGO_T}_RUSTFLAGS or CFLAGS_${CC_T})`)
  delete env[name]
}

console.error(`build:arm64: ${rust.version} (${rust.rustc}), linker ${gcc}`)
const started = process.hrtime.bigint()
const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const run = spawnSync(process.execPath, [
  napi, 'build', '--platform', '--release', '--no-js', '--target', TARGET,
  '--target-dir', targetDir, '--output-dir', outDir,
  // The declarations are the same on every target; keep them out of the source tree.
  // (napi joins this path to --output-dir, even an absolute one.)
  '--dts', path.relative(outDir, path.join(targetDir, 'native.d.ts')),
], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...env,
    RUSTC: rust.rustc,
    CARGO: rust.cargo,
    [`CARGO_TARGET_${CARGO_T}_LINKER`]: gcc,
    [`CC_${CC_T}`]: gcc,
    [`AR_${CC_T}`]: 'aarch64-linux-gnu-ar',
  },
})
if (run.status !== 0) fail(`napi build exited with ${run.status ?? run.signal}`)
if (!fs.existsSync(binary)) fail(`napi build finished but ${path.relative(root, binary)} is missing`)

if (elfMachine(binary) !== EM_AARCH64) fail(`${binary} is not an AArch64 ELF file`)
const seconds = Number(process.hrtime.bigint() - started) / 1e9
console.error(`build:arm64: ${path.relative(root, binary)} (${fs.statSync(binary).size} bytes) in ${seconds.toFixed(1)} s`)
