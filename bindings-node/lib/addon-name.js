'use strict'
// The file name of the native addon for this platform, as napi-rs names them.
function addonFileName() {
  let triple = `${process.platform}-${process.arch}`
  if (process.platform === 'linux') {
    const report = process.report && process.report.getReport ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    triple += glibc ? '-gnu' : '-musl'
  }
  return `iii-node.${triple}.node`
}
module.exports = { addonFileName }
