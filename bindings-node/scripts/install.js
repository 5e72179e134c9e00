// npm's install step of iii-sdk. Installed from a package tarball (which carries no Rust
// sources), the package uses the prebuilt addon for this platform that it carries
// (iii-node.<platform>-<arch>[-<libc>].node, the napi-rs naming): nothing to build, no Rust
// toolchain needed. Installed from the source tree (bindings-node, where Cargo.toml is), it
// builds the addon with cargo: release, or debug with III_NODE_PROFILE=debug.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { addonFileName } = require('../lib/addon-name')

const root = path.resolve(__dirname, '..')
if (fs.existsSync(path.join(root, 'Cargo.toml'))) {
  require('./build-native')
} else if (!fs.existsSync(path.join(root, addonFileName()))) {
  console.error(
    `iii-sdk: this package carries no prebuilt addon for this platform (${addonFileName()}).\n` +
      'Build one from the source tree: `npm install <checkout>/bindings-node` (needs a Rust toolchain),\n' +
      'or make a package for this platform there with scripts/package.sh.',
  )
  process.exit(1)
}
