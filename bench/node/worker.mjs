// The benchmark worker: one program for both clients, our package (bindings-node) and the
// published iii-sdk@0.22.1 (loaded from the interop cache, never copied), chosen by the
// package directory given. Only the public API both share is used: `registerWorker` from
// 'iii-sdk', `createChannel(iii)` from 'iii-sdk/helpers', `iii.registerFunction`,
// `iii.trigger`, `writer.stream` / `writer.sendMessage` / `writer.close`, `reader.stream` /
// `reader.onMessage`, `iii.shutdown`.
//
//   node worker.mjs PKG_DIR URL reader              serve bench::read (prints READY)
//   node worker.mjs PKG_DIR URL writer --bytes N    create a channel, call bench::read with its
//                                                   reader ref, write N bytes (RESULT <json>)
//   node worker.mjs PKG_DIR URL echo                serve bench::echo and bench::noop (READY)
//   node worker.mjs PKG_DIR URL ping --count N [--peers PID,PID]
//                                                   time N message and N trigger round trips
//                                                   (PIDs: the echo's and the engine's, whose CPU
//                                                   is read from /proc for the load figures)
//   node worker.mjs PKG_DIR URL mkchannel           create a channel, print REFS <json>, wait
//   node worker.mjs PKG_DIR URL setups --count N --in-flight K
//                                                   N channel setups handed to bench::count,
//                                                   K at a time (RESULT <json>)
//
// stdout carries only protocol lines; everything else goes to stderr. Serving roles run until
// stdin closes.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

import {
  CHUNK,
  WARMUP_TRIPS,
  chunkBytes,
  contextSwitches,
  cpuSecondsOf,
  emit,
  machineCpu,
  ownCpu,
  percentiles,
  since,
} from './common.mjs'

// The published client logs with console.log/debug: keep stdout for protocol lines.
const toStderr = (...args) => console.error(...args)
console.log = toStderr
console.debug = toStderr
console.info = toStderr

const [pkgDir, url, role, ...rest] = process.argv.slice(2)
const arg = (name, dflt) => {
  const i = rest.indexOf(`--${name}`)
  return i >= 0 ? rest[i + 1] : dflt
}

/** Imports `subpath` of the package in `dir` through its package.json `exports` (ESM). */
async function importExport(dir, subpath) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const resolve = (entry) => (typeof entry === 'string' ? entry : resolve(entry.import ?? entry.default))
  return import(pathToFileURL(path.join(dir, resolve(pkg.exports[subpath]))).href)
}

const { registerWorker } = await importExport(pkgDir, '.')
const { createChannel } = await importExport(pkgDir, './helpers')
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version

const iii = registerWorker(url, {
  workerName: `bench-node-${role}-${process.pid}`,
  invocationTimeoutMs: 900_000,
  // The published client's telemetry off (ours ignores these options).
  otel: { enabled: false },
  enableMetricsReporting: false,
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Trigger, retrying while the target is not registered yet (bounded). */
async function triggerRetry(request, deadlineMs = 30_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    try {
      return await iii.trigger(request)
    } catch (error) {
      if (error?.code === 'function_not_found' && Date.now() < until) {
        await sleep(100)
        continue
      }
      throw error
    }
  }
}

/**
 * Waits until this connection's registrations have reached the engine: they are sent before
 * this call on the same socket, so a call of our own probe function through the engine proves
 * the engine has processed them (neither client has a ready() call).
 */
async function awaitReady() {
  const id = `bench::ready::${process.pid}`
  iii.registerFunction(id, async () => ({ ok: true }))
  const result = await triggerRetry({ function_id: id, payload: {}, timeoutMs: 10_000 })
  if (!result?.ok) throw new Error(`ready probe returned ${JSON.stringify(result)}`)
}

async function serveUntilStdinCloses() {
  await awaitReady()
  emit(`READY ${version}`)
  await new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.resume()
  })
}

/** Marks a promise awaited later as handled (its rejection surfaces at that await). */
function later(promise) {
  promise.catch(() => {})
  return promise
}

/** Resolves on 'drain'; rejects on 'error' or 'close' first. */
function drained(stream) {
  return new Promise((resolve, reject) => {
    const done = (error) => {
      stream.off('drain', onDrain)
      stream.off('error', onError)
      stream.off('close', onClose)
      error ? reject(error) : resolve()
    }
    const onDrain = () => done()
    const onError = (error) => done(error)
    const onClose = () => done(new Error('the writer closed before drain'))
    stream.on('drain', onDrain)
    stream.on('error', onError)
    stream.on('close', onClose)
  })
}

function ended(stream) {
  return new Promise((resolve, reject) => stream.end((error) => (error ? reject(error) : resolve())))
}

// ---------------------------------------------------------------- throughput

function serveReader() {
  // The setups' reader: counts the bytes, nothing else (bench::read's figures cost more
  // than a small stream).
  iii.registerFunction('bench::count', async (input) => {
    let bytes = 0
    for await (const chunk of input.reader.stream) bytes += chunk.length
    return { bytes }
  })
  iii.registerFunction('bench::read', async (input) => {
    let bytes = 0
    let first = null
    let cpu = 0
    let machine = null
    let switches = 0
    for await (const chunk of input.reader.stream) {
      if (first === null) {
        first = performance.now()
        cpu = ownCpu()
        machine = machineCpu()
        switches = contextSwitches()
      }
      bytes += chunk.length
    }
    const rss = process.resourceUsage().maxRSS / 1024 // KiB → MiB, the process's peak
    if (first === null) return { bytes, secs: 0, cpu: 0, rss }
    return {
      bytes,
      secs: (performance.now() - first) / 1e3,
      cpu: ownCpu() - cpu,
      switches: contextSwitches() - switches,
      rss,
      ...since(machine),
    }
  })
}

async function write(total) {
  await awaitReady()
  const data = chunkBytes()
  const channel = await createChannel(iii)
  const call = later(
    triggerRetry({ function_id: 'bench::read', payload: { reader: channel.readerRef, bytes: total }, timeoutMs: 900_000 }),
  )
  const stream = channel.writer.stream
  let failed = null
  stream.on('error', (error) => (failed = failed ?? error))
  const started = performance.now()
  const cpu = ownCpu()
  const switches = contextSwitches()
  let sent = 0
  while (sent < total) {
    if (failed) throw failed
    const piece = total - sent >= CHUNK ? data : data.subarray(0, total - sent)
    sent += piece.length
    if (!stream.write(piece)) await drained(stream)
  }
  await ended(stream)
  const writer = {
    sent,
    secs: (performance.now() - started) / 1e3,
    cpu: ownCpu() - cpu,
    switches: contextSwitches() - switches,
    rss: process.resourceUsage().maxRSS / 1024,
  }
  const reader = await call
  return { ...reader, writer }
}

// ---------------------------------------------------------------- round trips

/** Text messages of a reader, one at a time. */
function inbox(reader) {
  const queued = []
  let waiting = null
  reader.onMessage((text) => {
    if (waiting) {
      const resolve = waiting
      waiting = null
      resolve(text)
    } else queued.push(text)
  })
  return {
    next(timeoutMs = 10_000) {
      if (queued.length) return Promise.resolve(queued.shift())
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within the timeout')), timeoutMs)
        waiting = (text) => {
          clearTimeout(timer)
          resolve(text)
        }
      })
    },
  }
}

/** Consumes a reader's data (the published reader connects, and delivers messages, only then). */
function drain(reader) {
  return later(
    new Promise((resolve, reject) => {
      reader.stream.on('data', () => {})
      reader.stream.on('end', resolve)
      reader.stream.on('error', reject)
    }),
  )
}

function serveEcho() {
  iii.registerFunction('bench::noop', async (input) => ({ seq: input?.seq }))
  iii.registerFunction('bench::echo', async (input) => {
    const { reader, writer } = input
    const cpu = ownCpu()
    let stop
    const stopped = new Promise((resolve) => (stop = resolve))
    reader.onMessage((text) => {
      if (text === 'STOP') stop()
      else writer.sendMessage(text)
    })
    const done = drain(reader)
    writer.sendMessage('READY')
    await stopped
    await done // the ping closes its writer after STOP
    await writer.close()
    return { ok: true, cpu: ownCpu() - cpu }
  })
}

/** CPU seconds of the processes `pids` (the echo and the engine, for the load figures). */
const peersCpu = (pids) => pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0)

async function ping(count, peers) {
  await awaitReady()
  const there = await createChannel(iii)
  const back = await createChannel(iii)
  const answers = inbox(back.reader)
  const backDone = drain(back.reader)
  const call = later(
    triggerRetry({
      function_id: 'bench::echo',
      payload: { reader: there.readerRef, writer: back.writerRef },
      timeoutMs: 900_000,
    }),
  )
  if ((await answers.next(30_000)) !== 'READY') throw new Error('the echo did not start')

  const samples = []
  let cpu = ownCpu()
  let others = peersCpu(peers)
  let machine = machineCpu()
  let window = performance.now()
  for (let i = 0; i < WARMUP_TRIPS + count; i++) {
    const text = JSON.stringify({ seq: i })
    const started = performance.now()
    there.writer.sendMessage(text)
    const answer = await answers.next()
    const elapsed = performance.now() - started
    if (answer !== text) throw new Error(`the echo returned ${answer}, sent ${text}`)
    if (i >= WARMUP_TRIPS) samples.push(elapsed * 1e3)
  }
  const messages = {
    ...percentiles(samples),
    secs: (performance.now() - window) / 1e3,
    cpu: ownCpu() - cpu,
    peers_cpu: peersCpu(peers) - others,
    ...since(machine),
  }
  there.writer.sendMessage('STOP')
  await there.writer.close()
  const echoed = await call
  await backDone
  messages.echo_cpu = echoed?.cpu ?? 0

  // Triggers of a trivial function in the echo process: the invocation round trip.
  const calls = []
  cpu = ownCpu()
  others = peersCpu(peers)
  machine = machineCpu()
  window = performance.now()
  for (let i = 0; i < WARMUP_TRIPS + count; i++) {
    const started = performance.now()
    const result = await iii.trigger({ function_id: 'bench::noop', payload: { seq: i }, timeoutMs: 10_000 })
    const elapsed = performance.now() - started
    if (result?.seq !== i) throw new Error(`bench::noop returned ${JSON.stringify(result)} for ${i}`)
    if (i >= WARMUP_TRIPS) calls.push(elapsed * 1e3)
  }
  const triggers = {
    ...percentiles(calls),
    secs: (performance.now() - window) / 1e3,
    cpu: ownCpu() - cpu,
    peers_cpu: peersCpu(peers) - others,
    ...since(machine),
  }
  return { messages, triggers }
}

// ---------------------------------------------------------------- channel setups

/** Bytes each setup streams: small, so the setup itself is what is timed. */
const SETUP_BYTES = 1024

/**
 * One channel setup as an application does it: create a channel, hand its reader ref to
 * `bench::count` in the reader process, write SETUP_BYTES and end; done when the call returns
 * with every byte counted.
 */
async function oneSetup(data) {
  const channel = await createChannel(iii)
  const call = later(
    iii.trigger({ function_id: 'bench::count', payload: { reader: channel.readerRef }, timeoutMs: 30_000 }),
  )
  const stream = channel.writer.stream
  stream.write(data)
  await ended(stream)
  const result = await call
  if (result?.bytes !== SETUP_BYTES) throw new Error(`bench::count counted ${JSON.stringify(result)}, sent ${SETUP_BYTES}`)
}

/** `count` setups after 300 untimed (the JIT warms up), `inFlight` at a time; setups per second. */
async function setups(count, inFlight) {
  await awaitReady()
  const data = chunkBytes().subarray(0, SETUP_BYTES)
  const run = async (total) => {
    let next = 0
    const lane = async () => {
      while (next < total) {
        next += 1
        await oneSetup(data)
      }
    }
    await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane))
  }
  await run(300)
  const cpu = ownCpu()
  const started = performance.now()
  await run(count)
  const secs = (performance.now() - started) / 1e3
  return { count, in_flight: inFlight, secs, per_sec: count / secs, cpu: ownCpu() - cpu }
}

// ---------------------------------------------------------------- main

async function main() {
  if (role === 'reader') {
    serveReader()
    await serveUntilStdinCloses()
  } else if (role === 'echo') {
    serveEcho()
    await serveUntilStdinCloses()
  } else if (role === 'writer') {
    emit(`RESULT ${JSON.stringify(await write(Number(arg('bytes', String(2 ** 30)))))}`)
  } else if (role === 'ping') {
    const peers = (arg('peers', '') || '').split(',').filter(Boolean).map(Number)
    emit(`RESULT ${JSON.stringify(await ping(Number(arg('count', '2000')), peers))}`)
  } else if (role === 'setups') {
    emit(`RESULT ${JSON.stringify(await setups(Number(arg('count', '300')), Number(arg('in-flight', '1'))))}`)
  } else if (role === 'mkchannel') {
    await awaitReady()
    const channel = await createChannel(iii)
    emit(`REFS ${JSON.stringify({ writer: channel.writerRef, reader: channel.readerRef })}`)
    await new Promise((resolve) => {
      process.stdin.on('end', resolve)
      process.stdin.resume()
    })
  } else {
    throw new Error(`unknown role ${role}`)
  }
  await iii.shutdown()
  process.exit(0)
}

function fail(error) {
  emit(`ERROR ${JSON.stringify({ code: error?.code, message: String(error?.message ?? error), stack: error?.stack })}`)
  process.exit(1)
}
process.on('unhandledRejection', fail)
process.on('uncaughtException', fail)
main().catch(fail)
