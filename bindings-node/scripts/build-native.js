// Builds the native addon with plain `cargo build -p iii-node` (no napi CLI, no second
// `target/<triple>` tree) and copies the library next to index.js as
// `iii-node.<platform>-<arch>[-gnu].node`: optimised, or a debug build with
// III_NODE_PROFILE=debug (faster to build while developing).
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { addonFileName } = require('../lib/addon-name')

const root = path.resolve(__dirname, '..')
const workspace = path.resolve(root, '..')
const profile = process.env.III_NODE_PROFILE === 'debug' ? 'debug' : 'release'
const args = ['build', '-p', 'iii-node']
if (profile === 'release') args.push('--release')
execFileSync('cargo', args, { cwd: workspace, stdio: 'inherit' })

const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(workspace, process.env.CARGO_TARGET_DIR)
  : path.join(workspace, 'target')
const libName = { darwin: 'libiii_node.dylib', win32: 'iii_node.dll' }[process.platform] || 'libiii_node.so'
const built = path.join(targetDir, profile, libName)
const dest = path.join(root, addonFileName())
// Copy to a temporary name and rename, so a running process never sees a half-written file.
fs.copyFileSync(built, dest + '.tmp')
fs.renameSync(dest + '.tmp', dest)
console.log(`iii-sdk: built ${path.relative(root, dest)} (${profile})`)
