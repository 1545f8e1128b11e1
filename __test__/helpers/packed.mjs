// The package as users get it: `npm pack` of the main package and of this platform's
// binary package (staged with its binary outside the repository, as CI's `napi artifacts`
// would), both installed into a fresh project. Used by test:package, test:runtimes and
// test:arm64.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts })

/**
 * A binary and the npm/<platform> package it belongs in: by default the one `npm run build`
 * made for this machine, in the repository's root; for another `platform`, the one in its
 * package folder (where `npm run build:arm64` puts it).
 */
export function platformPackage(platform) {
  const built = !platform && fs.readdirSync(root).find((f) => /^sonetel-auth\..+\.node$/.test(f))
  if (!platform) {
    assert.ok(built, 'build the addon first (npm run build)')
    platform = built.split('.')[1]
  }
  const binary = `sonetel-auth.${platform}.node`
  const dir = path.join(root, 'npm', platform)
  return { binary, path: path.join(built ? root : dir, binary), dir, name: `sonetel-auth-${platform}` }
}

/**
 * Packs both packages and installs them into `work`/app. Returns `{ project, tarballs }`.
 * `plat` is another platform's package (as platformPackage() describes one), installed as
 * npm installs it on that platform: one of the seven platform packages, all optional
 * dependencies, chosen by npm's `os`, `cpu` and `libc` settings, here set to
 * `npmPlatform` ({ os, cpu, libc }).
 */
export function installPacked(work, { plat = platformPackage(), npmPlatform } = {}) {
  const staged = path.join(work, 'platform')
  fs.cpSync(plat.dir, staged, { recursive: true })
  fs.copyFileSync(plat.path, path.join(staged, plat.binary))
  const packDir = path.join(work, 'tarballs')
  fs.mkdirSync(packDir)
  const pack = (cwd) => JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', packDir], { cwd }))[0]
  const tarballs = { main: pack(root), platform: pack(staged) }
  const project = path.join(work, 'app')
  fs.mkdirSync(project)
  const tgz = (t) => path.join(packDir, t.filename)
  if (npmPlatform) {
    // Every platform package as an optional dependency, as `napi pre-publish` lists them in
    // the published package; npm is to choose. The others carry no binary here.
    const optional = { [plat.name]: `file:${tgz(tarballs.platform)}` }
    for (const dir of fs.readdirSync(path.join(root, 'npm'))) {
      const name = `sonetel-auth-${dir}`
      if (name !== plat.name) optional[name] = `file:${tgz(pack(path.join(root, 'npm', dir)))}`
    }
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
      name: 'app', version: '1.0.0', private: true,
      dependencies: { 'sonetel-auth': `file:${tgz(tarballs.main)}` },
      optionalDependencies: optional,
    }))
    sh('npm', ['install', '--no-audit', '--no-fund', ...Object.entries(npmPlatform).map(([k, v]) => `--${k}=${v}`)], { cwd: project })
  } else {
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    sh('npm', ['install', '--no-audit', '--no-fund', '--omit=optional', tgz(tarballs.main), tgz(tarballs.platform)], { cwd: project })
  }
  return { project, tarballs }
}
