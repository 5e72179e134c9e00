'use strict'
// Loads the native addon built by scripts/build-native.js.
const path = require('node:path')
const { addonFileName } = require('./addon-name')

const file = path.join(__dirname, '..', addonFileName())
try {
  module.exports = require(file)
} catch (error) {
  error.message = `iii-sdk: cannot load the native addon ${file} (run \`npm run build\` in bindings-node): ${error.message}`
  throw error
}
