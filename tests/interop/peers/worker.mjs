// Interop worker built on the *published* Node client (iii-sdk@0.22.1), which setup.sh
// installs into $III_INTEROP_CACHE/node. Nothing here is copied from that client; it is
// only imported. With III_INTEROP_NODE_SDK=<dir of our bindings-node package> the same
// program runs on our Node package instead (`iii-sdk`, `iii-sdk/helpers` and `http` from
// there), and the functions report `runtime: 'iii-node'` instead of 'node'.
//
//   node worker.mjs serve pipeline transform files   register the reader-side functions
//   node worker.mjs serve download sse                HTTP handlers (published `http` helper)
//   node worker.mjs drive pipeline  [--records N] [--parallel K]
//   node worker.mjs drive transform [--text-lines N] [--pieces K]
//   node worker.mjs drive files     [--size BYTES] [--chunk BYTES] [--pause-after BYTES] [--pause-secs S]
//
// stdout carries only protocol lines: `READY` (serve: registrations have reached the
// engine) and `RESULT <json>` / `ERROR <json>` (drive). Everything else goes to stderr.
// The engine URL comes from III_URL. `serve download` serves files from
// III_INTEROP_FILES_DIR; `serve sse` waits III_INTEROP_SSE_INTERVAL_MS (default 1000, as the
// guide) between its events.

import { createHash } from 'node:crypto'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import * as fs from 'node:fs'
import { pipeline } from 'node:stream/promises'

// The client logs with console.debug/console.log; keep stdout for protocol lines.
const toStderr = (...args) => console.error(...args)
console.log = toStderr
console.debug = toStderr
console.info = toStderr
const emit = (line) => process.stdout.write(`${line}\n`)

const URL_ = process.env.III_URL ?? 'ws://127.0.0.1:49134'
const CACHE = process.env.III_INTEROP_CACHE ?? path.join(process.env.HOME ?? '/root', '.cache', 'iii-interop')
const NODE_DIR = process.env.III_INTEROP_NODE_DIR ?? path.join(CACHE, 'node')

// Our package instead of the published client, when set.
const OUR_SDK = process.env.III_INTEROP_NODE_SDK ? path.resolve(process.env.III_INTEROP_NODE_SDK) : null
// What the serving functions report as `runtime`.
const RUNTIME = OUR_SDK ? 'iii-node' : 'node'

// Load the ESM build of a package through its package.json `exports`, from its directory
// (ESM ignores NODE_PATH).
async function importPackage(pkgDir, subpath) {
  const pkgJsonPath = path.join(pkgDir, 'package.json')
  const pkgJson = JSON.parse(fs.readFileSync(pkgJsonPath, 'utf8'))
  // An export is a path or conditions ({ import, default }), possibly nested
  // (@iii-dev/helpers: { import: { types, default } }).
  const resolve = (entry) => (typeof entry === 'string' ? entry : resolve(entry.import ?? entry.default))
  const file = resolve(pkgJson.exports[subpath])
  return import(pathToFileURL(path.join(path.dirname(pkgJsonPath), file)).href)
}

const SDK_DIR = OUR_SDK ?? path.join(NODE_DIR, 'node_modules', 'iii-sdk')
const { registerWorker } = await importPackage(SDK_DIR, '.')
const { createChannel } = await importPackage(SDK_DIR, './helpers')
// The guide import `http` from 'iii-sdk', as our package has it; the published 0.22.1
// packages ship it in @iii-dev/helpers/http.
const { http } = OUR_SDK
  ? await importPackage(OUR_SDK, '.')
  : await importPackage(path.join(NODE_DIR, 'node_modules', '@iii-dev', 'helpers'), './http')
const sdkVersion = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version
console.error(`worker.mjs: iii-sdk ${sdkVersion} from ${SDK_DIR} (runtime ${RUNTIME})`)

// III_INTEROP_CLIENT_DEFAULTS=1: no options at all, as the docs' examples do (telemetry on).
const iii = process.env.III_INTEROP_CLIENT_DEFAULTS === '1'
  ? registerWorker(URL_)
  : registerWorker(URL_, {
    workerName: `interop-node-${process.argv[2] ?? 'worker'}-${process.pid}`,
    otel: { enabled: false },
    enableMetricsReporting: false,
    invocationTimeoutMs: 120_000,
  })

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const toBuffer = (chunk) => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))

// Trigger, retrying while the target is not registered yet (bounded).
async function triggerRetry(request, deadlineMs = 15_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    try {
      return await iii.trigger(request)
    } catch (err) {
      if (err?.code === 'function_not_found' && Date.now() < until) {
        await sleep(100)
        continue
      }
      throw err
    }
  }
}

// Deterministic test bytes shared by every language: SHAKE-256("iii-interop:<size>").
function testBytes(size) {
  return createHash('shake256', { outputLength: size }).update(`iii-interop:${size}`).digest()
}

// Writes to a Node Writable honouring backpressure.
async function writeAll(stream, data) {
  if (!stream.write(data)) {
    await new Promise((resolve, reject) => {
      const onDrain = () => { cleanup(); resolve() }
      const onError = (e) => { cleanup(); reject(e) }
      const onClose = () => { cleanup(); reject(new Error('writer closed before drain')) }
      const cleanup = () => {
        stream.off('drain', onDrain); stream.off('error', onError); stream.off('close', onClose)
      }
      stream.on('drain', onDrain); stream.on('error', onError); stream.on('close', onClose)
    })
  }
}

// Marks a promise that is awaited later as handled, so that a rejection while we wait for
// something else is reported by that later await instead of crashing the process.
function later(promise) {
  promise.catch(() => {})
  return promise
}

function endStream(stream, data) {
  return new Promise((resolve, reject) => {
    stream.once('error', reject)
    const cb = (err) => (err ? reject(err) : resolve())
    if (data === undefined) stream.end(cb)
    else stream.end(data, cb)
  })
}

// ---------------------------------------------------------------- functions (guide code)

// Guide "pipeline" example, consumer side.
function registerPipelineConsumer() {
  iii.registerFunction('pipeline::consumer', async (input) => {
    const chunks = []
    for await (const chunk of input.reader.stream) chunks.push(toBuffer(chunk))
    const records = JSON.parse(Buffer.concat(chunks).toString('utf-8'))
    const total = records.reduce((sum, r) => sum + r.value, 0)
    return { label: input.label, count: records.length, total, runtime: RUNTIME }
  })
}

// Guide "pipeline" example, producer side.
function registerPipelineProducer() {
  iii.registerFunction('pipeline::producer', async (input) => {
    const channel = await createChannel(iii)
    const writePromise = later(endStream(channel.writer.stream, Buffer.from(JSON.stringify(input.records))))
    const result = await triggerRetry({
      function_id: 'pipeline::consumer',
      payload: { label: 'batch-001', reader: channel.readerRef },
    })
    await writePromise
    return result
  })
}

// Guide "bidirectional with progress" example, worker side.
function registerTransformWorker() {
  iii.registerFunction('transform::worker', async (input) => {
    const chunks = []
    let count = 0
    for await (const chunk of input.reader.stream) {
      chunks.push(toBuffer(chunk))
      count++
      input.writer.sendMessage(JSON.stringify({ type: 'progress', chunks: count }))
    }
    const result = Buffer.concat(chunks).toString('utf-8').toUpperCase()
    await endStream(input.writer.stream, Buffer.from(result))
    return { status: 'done', chunks: count, runtime: RUNTIME }
  })
}

// Guide "bidirectional with progress" example, coordinator side. The input is written in
// `pieces` writes instead of one so that the worker reports several progress messages.
function registerTransformCoordinator() {
  iii.registerFunction('transform::coordinator', async (input) => {
    const inputChannel = await createChannel(iii)
    const outputChannel = await createChannel(iii)

    const progress = []
    outputChannel.reader.onMessage((msg) => progress.push(JSON.parse(msg)))

    const pieces = input.pieces ?? 1
    const text = Buffer.from(input.text)
    const step = Math.ceil(text.length / pieces)
    for (let i = 0; i < pieces - 1; i++) await writeAll(inputChannel.writer.stream, text.subarray(i * step, (i + 1) * step))
    const inputDone = later(endStream(inputChannel.writer.stream, text.subarray((pieces - 1) * step)))

    const triggerPromise = later(triggerRetry({
      function_id: 'transform::worker',
      payload: { reader: inputChannel.readerRef, writer: outputChannel.writerRef },
    }))

    const resultChunks = []
    const readLoop = later((async () => {
      for await (const chunk of outputChannel.reader.stream) resultChunks.push(toBuffer(chunk))
    })())
    // A failed worker call is reported at once rather than after the output read times out.
    await Promise.race([readLoop, triggerPromise.then(() => readLoop)])

    const worker = await triggerPromise
    await inputDone
    return { result: Buffer.concat(resultChunks).toString('utf-8'), progress, worker }
  })
}

// Guide "files::process" reader, extended to hash what it read.
function registerFilesProcess() {
  iii.registerFunction('files::process', async (input) => {
    const hash = createHash('sha256')
    let bytes = 0
    let chunks = 0
    for await (const chunk of input.reader.stream) {
      const buf = toBuffer(chunk)
      bytes += buf.length
      chunks++
      hash.update(buf)
    }
    return { filename: input.filename, bytes, chunks, sha256: hash.digest('hex'), runtime: RUNTIME }
  })
}

// Guide "Example 1: File Download via HTTP Endpoint" (Node tab), serving from
// III_INTEROP_FILES_DIR instead of /data/reports.
function registerFilesDownload() {
  const dir = process.env.III_INTEROP_FILES_DIR ?? '/data/reports'
  iii.registerFunction(
    'files::download',
    http(async (req, res) => {
      const filePath = `${dir}/${req.path_params.filename}`

      res.status(200)
      res.headers({
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${req.path_params.filename}"`,
      })

      await pipeline(fs.createReadStream(filePath), res.stream)
    }),
  )

  iii.registerTrigger({
    type: 'http',
    function_id: 'files::download',
    config: { api_path: '/files/:filename', http_method: 'GET' },
  })
}

// Guide "Example 2: Server-Sent Events (SSE) Streaming" (Node tab), with the interval between
// events from III_INTEROP_SSE_INTERVAL_MS (the guide waits 1000 ms).
function registerEventsStream() {
  const intervalMs = Number(process.env.III_INTEROP_SSE_INTERVAL_MS ?? '1000')
  iii.registerFunction(
    'events::stream',
    http(async (_req, res) => {
      res.status(200)
      res.headers({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'connection': 'keep-alive',
      })

      for (let i = 1; i <= 5; i++) {
        const frame = `id: ${i}\nevent: progress\ndata: ${JSON.stringify({ step: i, total: 5 })}\n\n`
        res.stream.write(Buffer.from(frame))
        await new Promise((r) => setTimeout(r, intervalMs))
      }

      const done = `id: 6\nevent: done\ndata: ${JSON.stringify({ message: 'complete' })}\n\n`
      res.stream.write(Buffer.from(done))
      res.stream.end()
    }),
  )

  iii.registerTrigger({
    type: 'http',
    function_id: 'events::stream',
    config: { api_path: '/events/stream', http_method: 'GET' },
  })
}

// Waits until this connection's registrations have reached the engine: registrations are
// sent before this call on the same socket, so a round trip through the engine to our own
// function proves they were processed.
async function awaitReady() {
  const id = `interop::ready::node::${process.pid}`
  iii.registerFunction(id, async () => ({ ok: true }))
  const r = await triggerRetry({ function_id: id, payload: {}, timeoutMs: 10_000 }, 30_000)
  if (!r?.ok) throw new Error(`ready probe returned ${JSON.stringify(r)}`)
}

// ---------------------------------------------------------------- drivers

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : dflt
}

async function drivePipeline() {
  registerPipelineProducer()
  await awaitReady()
  const n = Number(arg('records', '5000'))
  const makeRecords = (count) => Array.from({ length: count }, (_, i) => ({ name: `item-${i + 1}`, value: i + 1 }))
  const parallel = Number(arg('parallel', '0'))
  if (parallel > 0) {
    // `parallel` flows at once, flow i with n + i records: answers must not cross.
    return Promise.all(Array.from({ length: parallel }, (_, i) =>
      triggerRetry({ function_id: 'pipeline::producer', payload: { records: makeRecords(n + i) } })))
  }
  return triggerRetry({ function_id: 'pipeline::producer', payload: { records: makeRecords(n) } })
}

async function driveTransform() {
  registerTransformCoordinator()
  await awaitReady()
  const lines = Number(arg('text-lines', '200'))
  const text = Array.from({ length: lines }, (_, i) => `the quick brown fox jumps over the lazy dog ${i}\n`).join('')
  const pieces = Number(arg('pieces', '8'))
  return triggerRetry({ function_id: 'transform::coordinator', payload: { text, pieces } })
}

async function driveFiles() {
  await awaitReady()
  const size = Number(arg('size', String(20 * 1024 * 1024)))
  const chunk = Number(arg('chunk', String(256 * 1024)))
  const pauseAfter = Number(arg('pause-after', '-1'))
  const pauseSecs = Number(arg('pause-secs', '0'))
  const data = testBytes(size)

  const channel = await createChannel(iii)
  const triggerPromise = later(triggerRetry({
    function_id: 'files::process',
    payload: { filename: `blob-${size}.bin`, reader: channel.readerRef },
    timeoutMs: 300_000,
  }))
  let paused = false
  for (let off = 0; off < size; off += chunk) {
    if (!paused && pauseAfter >= 0 && off >= pauseAfter) {
      paused = true
      console.error(`[driver] pausing ${pauseSecs}s after ${off} bytes`)
      await sleep(pauseSecs * 1000)
    }
    const end = Math.min(off + chunk, size)
    if (end === size) await endStream(channel.writer.stream, data.subarray(off, end))
    else await writeAll(channel.writer.stream, data.subarray(off, end))
  }
  if (size === 0) await endStream(channel.writer.stream)
  const result = await triggerPromise
  return { result, sent: { bytes: size, sha256: createHash('sha256').update(data).digest('hex') } }
}

// ---------------------------------------------------------------- main

async function main() {
  const [role, ...rest] = process.argv.slice(2)
  if (role === 'serve') {
    const flows = rest.filter((a) => !a.startsWith('--'))
    for (const flow of flows) {
      if (flow === 'pipeline') registerPipelineConsumer()
      else if (flow === 'transform') registerTransformWorker()
      else if (flow === 'files') registerFilesProcess()
      else if (flow === 'download') registerFilesDownload()
      else if (flow === 'sse') registerEventsStream()
      else throw new Error(`unknown flow ${flow}`)
    }
    await awaitReady()
    emit('READY')
    // Serve until the harness closes stdin or kills us.
    process.stdin.resume()
    process.stdin.on('end', async () => { await iii.shutdown(); process.exit(0) })
    return
  }
  if (role === 'drive') {
    const flow = rest[0]
    const drivers = { pipeline: drivePipeline, transform: driveTransform, files: driveFiles }
    if (!drivers[flow]) throw new Error(`unknown flow ${flow}`)
    const result = await drivers[flow]()
    emit(`RESULT ${JSON.stringify(result)}`)
    await iii.shutdown()
    process.exit(0)
  }
  throw new Error(`usage: worker.mjs serve|drive <flow>...`)
}

function fail(err) {
  emit(`ERROR ${JSON.stringify({ code: err?.code, message: String(err?.message ?? err), stack: err?.stack })}`)
  process.exit(1)
}
process.on('unhandledRejection', fail)
process.on('uncaughtException', fail)
main().catch(fail)
