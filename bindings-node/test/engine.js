'use strict'
// Starts the engine binary on free ports for a test file and stops it afterwards.
// III_ENGINE overrides the binary (default: target/debug/iii of the workspace).
const { spawn } = require('node:child_process')
const net = require('node:net')
const path = require('node:path')

const workspace = path.resolve(__dirname, '..', '..')
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(workspace, process.env.CARGO_TARGET_DIR)
  : path.join(workspace, 'target')

function engineBinary() {
  return process.env.III_ENGINE || path.join(targetDir, 'debug', 'iii')
}

/**
 * Resolves with `{ url, httpUrl, stop(), signal(name), exited }` once the engine printed both
 * URLs; `args` are extra engine flags, `exited` resolves with the exit code.
 */
function startEngine({ port = 0, args = [], env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(engineBinary(), ['--port', String(port), '--http-port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
    })
    let output = ''
    let resolved = false
    let url = null
    let httpUrl = null
    const onData = (data) => {
      output += data
      if (resolved) return
      url = url || (output.match(/iii engine listening on (wss?:\/\/\S+)/) || [])[1]
      httpUrl = httpUrl || (output.match(/iii http triggers on (https?:\/\/\S+)/) || [])[1]
      if (url && httpUrl) {
        // Output is still collected (access tests read the engine's log).
        resolved = true
        resolve({
          url,
          httpUrl,
          // The extra listeners a config file opens, in its order.
          extraUrls: [...output.matchAll(/iii engine also listening on (\S+)/g)].map((m) => m[1]),
          output: () => output,
          signal: (name) => child.kill(name),
          exited: new Promise((done) => {
            if (child.exitCode !== null) done(child.exitCode)
            else child.once('exit', (code) => done(code))
          }),
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done()
              child.once('exit', () => done())
              child.kill('SIGTERM')
            }),
        })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`the engine exited (${code}) before it was ready:\n${output}`)))
  })
}

/** A local port nothing listens on (bound, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

module.exports = { startEngine, freePort }
