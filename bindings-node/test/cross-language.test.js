'use strict'
// Our Node package with the other SDKs, through our engine, in both directions: our Python
// package (tests/interop/peers/peer.py), our Rust SDK (the `interop_worker` example,
// tests/interop/peers/rust_worker.rs) and the published Node client iii-sdk@0.22.1
// (tests/interop/peers/worker.mjs). Our side is the same worker.mjs run on this package
// (III_INTEROP_NODE_SDK), so both Node sides run one program.
//
// Every peer speaks the interop command line: `serve pipeline transform files` registers the
// reader-side functions and prints READY; `drive <flow>` creates the channels, triggers the
// server's function through the engine and prints `RESULT <json>`. Each server kind gets its
// own engine and one serving process for the whole file; every test runs a driver process
// against it. Test names read `<flow>: <driver> → <server>`.
//
// Prerequisites (a missing one fails the tests that need it, saying how to get it):
//   - the engine: $III_ENGINE or <target>/debug/iii (cargo build -p iii-engine)
//   - our Python package: $III_PYTHON or <target>/python-venv/bin/python (scripts/test.sh)
//   - the Rust worker: $III_INTEROP_RUST_WORKER or <target>/debug/examples/interop_worker
//   - the published client: $III_INTEROP_CACHE (default ~/.cache/iii-interop)/node
//     (bash tests/interop/setup.sh)
// <target> is $CARGO_TARGET_DIR, else the workspace's target/.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')

const { addonFileName } = require('../lib/addon-name')
const { startEngine } = require('./engine')

const PACKAGE = path.resolve(__dirname, '..')
const WORKSPACE = path.resolve(PACKAGE, '..')
const TARGET = process.env.CARGO_TARGET_DIR
  ? path.resolve(WORKSPACE, process.env.CARGO_TARGET_DIR)
  : path.join(WORKSPACE, 'target')
const WORKER_MJS = path.join(WORKSPACE, 'tests', 'interop', 'peers', 'worker.mjs')
const PEER_PY = path.join(WORKSPACE, 'tests', 'interop', 'peers', 'peer.py')
const PYTHON = process.env.III_PYTHON || path.join(TARGET, 'python-venv', 'bin', 'python')
const RUST_WORKER = process.env.III_INTEROP_RUST_WORKER || path.join(TARGET, 'debug', 'examples', 'interop_worker')
const CACHE = process.env.III_INTEROP_CACHE || path.join(os.homedir(), '.cache', 'iii-interop')
const PUBLISHED = path.join(CACHE, 'node', 'node_modules')

const RECORDS = 3000
const TEXT_LINES = 200
const PIECES = 8
const FILE_SIZE = 6 * 1024 * 1024 + 12345 // several MiB, not a multiple of the 64 KiB frame
const FILE_CHUNK = 200_000
const DRIVE_TIMEOUT_MS = 30_000
const READY_TIMEOUT_MS = 30_000

/** What the interop command line runs for each kind, and what must exist first. */
const PEERS = {
  ours: {
    label: 'our Node',
    command: () => [process.execPath, WORKER_MJS],
    env: { III_INTEROP_NODE_SDK: PACKAGE },
    runtime: 'iii-node',
    // A Node Readable may hand buffered frames over concatenated.
    chunksOnePerFrame: false,
    missing() {
      const addon = path.join(PACKAGE, addonFileName())
      if (!fs.existsSync(addon)) return `our native addon ${addon} is missing: run \`npm run build\` in bindings-node`
      return null
    },
  },
  python: {
    label: 'our Python',
    command: () => [PYTHON, PEER_PY],
    env: {},
    // The pipeline and transform functions of examples/python return the guide's fields
    // only; files::process names its runtime.
    runtime: undefined,
    filesRuntime: 'python',
    chunksOnePerFrame: true,
    missing() {
      const how =
        'run scripts/test.sh (it creates target/python-venv and installs ./bindings-python into it), ' +
        'or set III_PYTHON to a python where our `iii` package (bindings-python) is installed'
      if (!fs.existsSync(PYTHON)) return `the Python of our package's venv ${PYTHON} is missing: ${how}`
      // Our package is the distribution `iii`; the published client (distribution `iii-sdk`)
      // has the same import name.
      const probe = spawnSync(PYTHON, ['-c', "import importlib.metadata as m, iii; m.distribution('iii')"], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      if (probe.status !== 0) return `${PYTHON} has no \`iii\` package of ours: ${how}\n${probe.stderr || probe.error}`
      return null
    },
  },
  rust: {
    label: 'our Rust SDK',
    command: () => [RUST_WORKER],
    env: {},
    runtime: 'rust',
    chunksOnePerFrame: true,
    missing() {
      if (fs.existsSync(RUST_WORKER)) return null
      return (
        `the Rust interop worker ${RUST_WORKER} is missing: run \`cargo build -p iii-sdk --example interop_worker\` ` +
        '(with the same CARGO_TARGET_DIR), or set III_INTEROP_RUST_WORKER'
      )
    },
  },
  node: {
    label: 'published iii-sdk',
    command: () => [process.execPath, WORKER_MJS],
    env: {},
    runtime: 'node',
    chunksOnePerFrame: false,
    missing() {
      const wanted = ['iii-sdk', path.join('@iii-dev', 'helpers')].map((p) => path.join(PUBLISHED, p, 'package.json'))
      const absent = wanted.filter((file) => !fs.existsSync(file))
      if (absent.length === 0) return null
      return (
        `the published Node client is not installed (${absent.join(', ')}): run \`bash tests/interop/setup.sh\` ` +
        '(it installs iii-sdk@0.22.1 into $III_INTEROP_CACHE/node, default ~/.cache/iii-interop)'
      )
    },
  },
}

/** Throws the peer's "how to get it" message when its program is missing. */
function requirePeer(kind) {
  const message = PEERS[kind].missing()
  if (message) throw new Error(`prerequisite missing for ${PEERS[kind].label}: ${message}`)
}

function peerEnv(kind, engine) {
  const env = {
    ...process.env,
    ...PEERS[kind].env,
    III_URL: engine.url,
    III_INTEROP_CACHE: CACHE,
    PYTHONUNBUFFERED: '1',
    RUST_LOG: process.env.III_INTEROP_WORKER_LOG || 'warn',
    NO_COLOR: '1',
  }
  if (!PEERS[kind].env.III_INTEROP_NODE_SDK) delete env.III_INTEROP_NODE_SDK
  return env
}

/** Keeps the last `limit` characters of a stream's output. */
function collect(stream, limit = 8000) {
  const out = { text: '' }
  stream.setEncoding('utf8')
  stream.on('data', (data) => {
    out.text = (out.text + data).slice(-limit)
  })
  return out
}

// ---------------------------------------------------------------- serving processes

const servers = new Map() // kind -> Promise<{ engine, child, stderr }>
const started = [] // everything to stop at the end: { engine?, child? }

/** The engine and the serving process of `kind`, started once for the file. */
function server(kind) {
  if (!servers.has(kind)) {
    const starting = startServer(kind)
    starting.catch(() => {}) // reported by the tests that await it
    servers.set(kind, starting)
  }
  return servers.get(kind)
}

async function startServer(kind) {
  requirePeer(kind)
  const engine = await startEngine()
  const entry = { engine }
  started.push(entry)
  const [command, ...args] = PEERS[kind].command()
  const child = spawn(command, [...args, 'serve', 'pipeline', 'transform', 'files'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: peerEnv(kind, engine),
  })
  entry.child = child
  const stderr = collect(child.stderr)
  const stdout = collect(child.stdout)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`not READY within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)
    const onData = () => {
      if (/^READY$/m.test(stdout.text)) done()
    }
    const onExit = (code, signal) => fail(`exited (${signal || code}) before READY`)
    const onError = (error) => fail(`could not start: ${error.message}`)
    function done() {
      clearTimeout(timer)
      child.stdout.off('data', onData)
      child.off('exit', onExit)
      child.off('error', onError)
      resolve()
    }
    function fail(why) {
      done()
      reject(new Error(`${PEERS[kind].label} serving process ${why}\nstdout: ${stdout.text}\nstderr:\n${stderr.text}`))
    }
    child.stdout.on('data', onData)
    child.once('exit', onExit)
    child.once('error', onError)
  })
  return { engine, child, stderr }
}

before(() => {
  // Start every server at once; each test awaits the one it needs.
  for (const kind of Object.keys(PEERS)) server(kind)
})

after(async () => {
  await Promise.all(
    started.map(async ({ engine, child }) => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.stdin.end() // every peer serves until its stdin closes
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      await engine.stop()
    }),
  )
})

// ---------------------------------------------------------------- drivers

/** Runs `driver`'s `drive <flow>` against `serverKind`'s engine; resolves with its RESULT. */
async function drive(driver, serverKind, flow, ...args) {
  requirePeer(driver)
  const { engine, stderr: serverStderr } = await server(serverKind)
  const [command, ...commandArgs] = PEERS[driver].command()
  const child = spawn(command, [...commandArgs, 'drive', flow, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: peerEnv(driver, engine),
  })
  const stdout = collect(child.stdout, 1 << 24)
  const stderr = collect(child.stderr)
  const timer = setTimeout(() => child.kill('SIGKILL'), DRIVE_TIMEOUT_MS)
  const [code, signal] = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  const context = () =>
    `\n${PEERS[driver].label} driver stderr:\n${stderr.text}\n${PEERS[serverKind].label} server stderr:\n${serverStderr.text}`
  const lines = stdout.text.split('\n')
  const error = lines.find((line) => line.startsWith('ERROR '))
  if (error) throw new Error(`${PEERS[driver].label} driver of ${flow} failed: ${error.slice(6, 4000)}${context()}`)
  const result = lines.find((line) => line.startsWith('RESULT '))
  if (!result) {
    const how = signal === 'SIGKILL' ? `was killed after ${DRIVE_TIMEOUT_MS} ms` : `exited (${signal || code})`
    throw new Error(`${PEERS[driver].label} driver of ${flow} ${how} without a RESULT${context()}`)
  }
  assert.equal(code, 0, `${PEERS[driver].label} driver exited ${code} after its RESULT${context()}`)
  if (command === process.execPath) {
    // worker.mjs names the SDK it loaded: ours must not quietly fall back to the published one.
    const expected =
      driver === 'ours'
        ? `from ${PACKAGE} (runtime iii-node)`
        : `from ${path.join(PUBLISHED, 'iii-sdk')} (runtime node)`
    assert.ok(
      stderr.text.includes(expected),
      `${PEERS[driver].label} driver: worker.mjs did not load iii-sdk ${expected}${context()}`,
    )
  }
  return JSON.parse(result.slice(7))
}

// ---------------------------------------------------------------- checks

function checkRuntime(result, expected) {
  if (expected === undefined) assert.ok(!('runtime' in result), `unexpected runtime: ${JSON.stringify(result)}`)
  else assert.equal(result.runtime, expected, `served by ${result.runtime}, expected ${expected}`)
}

function expectedText() {
  let text = ''
  for (let i = 0; i < TEXT_LINES; i++) text += `the quick brown fox jumps over the lazy dog ${i}\n`
  return text
}

/** sha256 of the interop suite's test bytes, SHAKE-256("iii-interop:<size>"). */
function testBytesSha256(size) {
  const data = crypto.createHash('shake256', { outputLength: size }).update(`iii-interop:${size}`).digest()
  return crypto.createHash('sha256').update(data).digest('hex')
}

// ---------------------------------------------------------------- the tests

const PAIRS = [
  ['ours', 'python'],
  ['python', 'ours'],
  ['ours', 'rust'],
  ['rust', 'ours'],
  ['ours', 'node'],
  ['node', 'ours'],
]
const name = (flow, driver, serverKind) => `${flow}: ${PEERS[driver].label} → ${PEERS[serverKind].label}`

for (const [driver, serverKind] of PAIRS) {
  test(name('pipeline', driver, serverKind), async () => {
    const result = await drive(driver, serverKind, 'pipeline', '--records', String(RECORDS))
    assert.equal(result.label, 'batch-001', JSON.stringify(result))
    assert.equal(result.count, RECORDS, JSON.stringify(result))
    assert.equal(result.total, (RECORDS * (RECORDS + 1)) / 2, JSON.stringify(result))
    checkRuntime(result, PEERS[serverKind].runtime)
  })
}

for (const [driver, serverKind] of PAIRS) {
  test(name('transform', driver, serverKind), async () => {
    const result = await drive(
      driver,
      serverKind,
      'transform',
      '--text-lines',
      String(TEXT_LINES),
      '--pieces',
      String(PIECES),
    )
    assert.equal(result.result, expectedText().toUpperCase())
    const worker = result.worker
    assert.equal(worker.status, 'done', JSON.stringify(worker))
    checkRuntime(worker, PEERS[serverKind].runtime)
    if (PEERS[serverKind].chunksOnePerFrame) {
      assert.equal(worker.chunks, PIECES, `one chunk per write expected: ${JSON.stringify(worker)}`)
    } else {
      assert.ok(Number.isInteger(worker.chunks) && worker.chunks >= 1 && worker.chunks <= PIECES, JSON.stringify(worker))
    }
    // One progress message per chunk the worker read, all delivered before the output ended.
    assert.deepEqual(
      result.progress,
      Array.from({ length: worker.chunks }, (_, i) => ({ type: 'progress', chunks: i + 1 })),
    )
  })
}

for (const [driver, serverKind] of PAIRS) {
  test(name('files', driver, serverKind), async () => {
    const { result, sent } = await drive(
      driver,
      serverKind,
      'files',
      '--size',
      String(FILE_SIZE),
      '--chunk',
      String(FILE_CHUNK),
    )
    const sha256 = testBytesSha256(FILE_SIZE)
    assert.deepEqual(sent, { bytes: FILE_SIZE, sha256 }, 'the driver sent other bytes than the test bytes')
    assert.equal(result.filename, `blob-${FILE_SIZE}.bin`, JSON.stringify(result))
    assert.equal(result.bytes, FILE_SIZE, JSON.stringify(result))
    assert.equal(result.sha256, sha256, 'the reader got different bytes')
    assert.ok(Number.isInteger(result.chunks) && result.chunks >= 1, JSON.stringify(result))
    checkRuntime(result, PEERS[serverKind].filesRuntime ?? PEERS[serverKind].runtime)
  })
}
