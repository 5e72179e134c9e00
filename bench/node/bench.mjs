#!/usr/bin/env node
// Node → Node through the iii engine: our package `iii-sdk` (bindings-node) against the
// published client (npm iii-sdk@0.22.1) on the same engine binary, in the same run.
//
// `bench/node/run.sh` builds everything and runs this; by hand:
//
//   node bench/node/bench.mjs --engine $CARGO_TARGET_DIR/release/iii [--rounds 3]
//        [--bytes 1073741824] [--trips 2000] [--quick]
//
// Both clients run the same program (worker.mjs), which imports the client from the package
// directory it is given (--ours, default bindings-node; --published, default the interop
// cache's node_modules/iii-sdk). Per round, one fresh `iii` engine process (release build,
// default options) and on it the clients in alternating order (round 1 published first,
// round 2 ours first, ...):
//
// - throughput: a reader process serves `bench::read` (consumes `input.reader.stream` with
//   `for await`); a writer process creates a channel, calls `bench::read` with the reader
//   ref and writes 1 GiB to `channel.writer.stream` in 64 KiB writes, waiting for 'drain'
//   whenever write() returns false, then end(). The reader times from its first chunk to the
//   end and counts the bytes (which must equal what was sent).
// - round trips: a ping process creates two channels and calls `bench::echo` (an echo
//   process) with the reader of one and the writer of the other, then times `--trips` text
//   messages there and back (sendMessage / onMessage, after 200 untimed; four WebSocket hops
//   through the engine each), then `--trips` triggers of `bench::noop` in the echo process.
// - channel setups: the reader process also serves `bench::count` (counts a reader's bytes); a
//   setups process runs `--setups` setups (create a channel, call `bench::count` with its reader ref, write 1 KiB,
//   end, await the call's byte count), one at a time and then 16 in flight, after 300 untimed.
// - context, same engine: the Rust SDK's relay (iii-bench's channel writer and reader
//   processes) and the one-hop ceiling (one plain tokio-tungstenite WebSocket between two
//   processes, no engine), when the iii-bench binary exists.
//
// Figures are medians over the rounds, with their ranges (this VM varies by ±30 % between
// runs). CPU figures are seconds per GiB moved: the engine's from /proc, each worker's from
// its own process.cpuUsage() (every thread; the reader's from its first chunk, the writer's
// from its first write to the end of its stream).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'
import { fileURLToPath } from 'node:url'

import { GIB, cpuSecondsOf } from './common.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target')
const CACHE = process.env.III_INTEROP_CACHE ?? path.join(os.homedir(), '.cache', 'iii-interop')
const CORES = os.cpus().length || 1

/** Channel setups kept in flight by the parallel setups figure. */
const SETUPS_IN_FLIGHT = 16

const log = (line) => process.stdout.write(`${line}\n`)

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = {
    engine: path.join(TARGET, 'release', 'iii'),
    ours: path.join(ROOT, 'bindings-node'),
    published: path.join(CACHE, 'node', 'node_modules', 'iii-sdk'),
    rustBench: path.join(TARGET, 'release', 'iii-bench'),
    rounds: 3,
    bytes: GIB,
    trips: 2000,
    setups: 3000,
    timeout: 600,
    only: null,
    build: '',
  }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${name} needs a value`)
      return argv[++i]
    }
    if (name === '--engine') args.engine = value()
    else if (name === '--ours') args.ours = value()
    else if (name === '--published') args.published = value()
    else if (name === '--rust-bench') args.rustBench = value() // '' skips the context figures
    else if (name === '--rounds') args.rounds = Number(value())
    else if (name === '--bytes') args.bytes = Number(value())
    else if (name === '--trips') args.trips = Number(value())
    else if (name === '--setups') args.setups = Number(value())
    else if (name === '--timeout') args.timeout = Number(value())
    else if (name === '--only') args.only = value() // ours | published
    else if (name === '--build') args.build = value() // what run.sh built, for the header
    else if (name === '--published-label') args.publishedLabel = value() // when --published is another build
    else if (name === '--quick') Object.assign(args, { rounds: 1, bytes: 32 * 2 ** 20, trips: 200, setups: 100 })
    else if (name === '--help' || name === '-h') {
      log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0].replace(/^#!.*\n/, ''))
      process.exit(0)
    } else throw new Error(`unknown argument ${name}`)
  }
  return args
}

// ---------------------------------------------------------------- child processes

/** A child process whose stdout lines we read; its stdin stays open until stop(). */
class Proc {
  constructor(command, args, env) {
    this.label = [command, ...args].slice(0, 5).map((a) => path.basename(String(a))).join(' ')
    this.stderr = ''
    this.child = spawn(command, args.map(String), { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env })
    this.child.stdin.on('error', () => {})
    // A binary that cannot start (missing, or being relinked by a build) fails its line() wait.
    this.child.on('error', (error) => {
      this.stderr += `\n${error.message}`
      this.exited = this.exited ?? { error: error.code ?? error.message }
      this.wake()
    })
    this.child.stderr.on('data', (data) => {
      this.stderr = (this.stderr + data).slice(-4000)
    })
    this.lines = []
    this.waiters = []
    this.exited = null
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line)
      this.wake()
    })
    // 'close', not 'exit': 'exit' can come before the last stdout lines were read.
    this.child.on('close', (code, signal) => {
      this.exited = { code, signal }
      this.wake()
    })
  }

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  get pid() {
    return this.child.pid
  }

  /** The rest of the first stdout line starting with `prefix`. */
  async line(prefix, timeoutSecs) {
    const deadline = Date.now() + timeoutSecs * 1000
    for (;;) {
      while (this.lines.length) {
        const line = this.lines.shift()
        if (line.startsWith('ERROR ')) throw new Error(`${this.label}: ${line} ${this.stderr.slice(-1500)}`)
        if (line.startsWith(prefix)) return line.slice(prefix.length).trim()
      }
      if (this.exited) throw new Error(`${this.label}: exited (${JSON.stringify(this.exited)}) before ${JSON.stringify(prefix)}: ${this.stderr.slice(-1500)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.label}: no ${JSON.stringify(prefix)} line within ${timeoutSecs} s`)
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  cpu() {
    return cpuSecondsOf(this.pid)
  }

  /** Closes stdin and waits for the exit; kills after `timeoutSecs`. */
  async stop(timeoutSecs = 10, signal = null) {
    if (this.exited) return
    const exited = new Promise((resolve) => this.child.once('close', resolve))
    if (signal) this.child.kill(signal)
    else this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutSecs * 1000)
    await exited
    clearTimeout(timer)
  }
}

class Engine extends Proc {
  constructor(binary) {
    super(binary, ['--port', '0', '--http-port', '0'], { ...process.env, RUST_LOG: 'warn', NO_COLOR: '1' })
  }

  async start() {
    this.url = (await this.line('iii engine listening on ', 30)).split(/\s+/)[0]
    return this
  }

  stop() {
    return super.stop(10, 'SIGTERM')
  }
}

// ---------------------------------------------------------------- measurements

class Bench {
  constructor(args) {
    this.args = args
    this.dirs = { ours: args.ours, published: args.published }
  }

  worker(variant, url, role, ...extra) {
    return new Proc(process.execPath, [path.join(HERE, 'worker.mjs'), this.dirs[variant], url, role, ...extra])
  }

  async throughput(engine, variant, total) {
    const reader = this.worker(variant, engine.url, 'reader')
    let writer = null
    try {
      await reader.line('READY', 60)
      const cpu = engine.cpu()
      writer = this.worker(variant, engine.url, 'writer', '--bytes', total)
      const r = JSON.parse(await writer.line('RESULT ', this.args.timeout))
      r.engine_cpu = engine.cpu() - cpu
      r.expected = total
      r.mb_s = r.bytes / Math.max(r.secs, 1e-9) / 1e6
      const gib = Math.max(r.bytes, 1) / GIB
      r.engine_per_gib = r.engine_cpu / gib
      r.reader_per_gib = r.cpu / gib
      r.writer_per_gib = r.writer.cpu / gib
      // What other processes of the machine used meanwhile (the machine is shared): its busy
      // time over the reader's window, less the engine's and the two workers' own.
      const others = (r.system_busy ?? 0) - r.cpu - r.writer.cpu - r.engine_cpu
      r.others_share = Math.max(others, 0) / Math.max(r.secs, 1e-9) / CORES
      r.steal_share = (r.steal ?? 0) / Math.max(r.secs, 1e-9) / CORES
      return r
    } finally {
      if (writer) await writer.stop()
      await reader.stop()
    }
  }

  async roundTrips(engine, variant) {
    const echo = this.worker(variant, engine.url, 'echo')
    let ping = null
    try {
      await echo.line('READY', 60)
      ping = this.worker(variant, engine.url, 'ping', '--count', this.args.trips, '--peers', `${echo.pid},${engine.pid}`)
      const r = JSON.parse(await ping.line('RESULT ', this.args.timeout))
      for (const t of [r.messages, r.triggers]) {
        t.others_share = Math.max((t.system_busy ?? 0) - t.cpu - t.peers_cpu, 0) / Math.max(t.secs, 1e-9) / CORES
        t.steal_share = (t.steal ?? 0) / Math.max(t.secs, 1e-9) / CORES
      }
      return r
    } finally {
      if (ping) await ping.stop()
      await echo.stop()
    }
  }

  /** Setups per second, one at a time and `SETUPS_IN_FLIGHT` at a time. */
  async setups(engine, variant) {
    const reader = this.worker(variant, engine.url, 'reader')
    try {
      await reader.line('READY', 60)
      const rates = {}
      for (const inFlight of [1, SETUPS_IN_FLIGHT]) {
        // One at a time takes the published client 13 ms a setup: a fifth of the count.
        const count = inFlight === 1 ? Math.max(100, Math.round(this.args.setups / 5)) : this.args.setups
        const run = this.worker(variant, engine.url, 'setups', '--count', count, '--in-flight', inFlight)
        try {
          rates[inFlight] = JSON.parse(await run.line('RESULT ', this.args.timeout)).per_sec
        } finally {
          await run.stop()
        }
      }
      return { serial: rates[1], parallel: rates[SETUPS_IN_FLIGHT] }
    } finally {
      await reader.stop()
    }
  }

  /** The Rust SDK's writer and reader processes through the same engine; the channel is
   * created by a worker of our package (any client would do). */
  async rustRelay(engine, total) {
    const holder = this.worker('ours', engine.url, 'mkchannel')
    const procs = [holder]
    try {
      const refs = JSON.parse(await holder.line('REFS ', 60))
      const cpu = engine.cpu()
      const rb = this.args.rustBench
      const reader = new Proc(rb, ['channel-reader', '--url', engine.url, '--reference', JSON.stringify(refs.reader)])
      procs.push(reader)
      const writer = new Proc(rb, ['channel-writer', '--url', engine.url, '--reference', JSON.stringify(refs.writer), '--bytes', total])
      procs.push(writer)
      const r = JSON.parse('{' + (await reader.line('{', this.args.timeout)))
      await writer.line('DONE ', 60)
      r.engine_cpu = engine.cpu() - cpu
      r.mb_s = r.bytes / Math.max(r.secs, 1e-9) / 1e6
      return r
    } finally {
      for (const proc of procs.reverse()) await proc.stop()
    }
  }

  async oneHop(total) {
    const rb = this.args.rustBench
    const sink = new Proc(rb, ['sink-server'])
    const procs = [sink]
    try {
      const port = await sink.line('READY ', 30)
      const writer = new Proc(rb, ['hop-writer', '--url', `ws://127.0.0.1:${port}/`, '--bytes', total])
      procs.push(writer)
      const r = JSON.parse('{' + (await sink.line('{', this.args.timeout)))
      await writer.line('DONE ', 60)
      r.mb_s = r.bytes / Math.max(r.secs, 1e-9) / 1e6
      return r
    } finally {
      for (const proc of procs.reverse()) await proc.stop()
    }
  }
}

// ---------------------------------------------------------------- summary helpers

const median = (values) => {
  if (!values.length) return NaN
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const range = (values, digits = 0) =>
  values.length ? `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}` : '—'
const load = (r) =>
  `other processes ${(100 * r.others_share).toFixed(0)} %, hypervisor steal ${(100 * r.steal_share).toFixed(0)} % of the machine`

function versionOf(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}

// ---------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const bench = new Bench(args)
  const LABELS = {
    published: args.publishedLabel ?? `published iii-sdk ${versionOf(args.published)}`,
    ours: 'ours (bindings-node)',
  }
  const variants = args.only ? [args.only] : ['published', 'ours']
  const withContext = Boolean(args.rustBench) && fs.existsSync(args.rustBench)
  const build = args.build
  log(
    `node bench: node ${process.version}, engine ${args.engine}, ours ${versionOf(args.ours)} (${args.ours}${build ? `; ${build}` : ''}), ` +
      `published ${versionOf(args.published)} (${args.published}); ${args.rounds} rounds, ${(args.bytes / 2 ** 20).toFixed(0)} MiB per transfer, ` +
      `64 KiB writes, ${args.trips} round trips`,
  )

  const keys = ['mb_s', 'engine', 'reader', 'writer', 'clients', 'reader_rss', 'writer_rss', 'msg_p50', 'msg_p99', 'trig_p50', 'trig_p99', 'setups_serial', 'setups_parallel']
  const figures = Object.fromEntries(variants.map((v) => [v, Object.fromEntries(keys.map((k) => [k, []]))]))
  const ratios = []
  const rust = []
  const hop = []
  const failures = []

  for (let round = 1; round <= args.rounds; round++) {
    const order = round % 2 ? variants : [...variants].reverse()
    const engine = await new Engine(args.engine).start()
    const rates = {}
    try {
      for (const variant of order) {
        let r
        try {
          r = await bench.throughput(engine, variant, args.bytes)
        } catch (error) {
          failures.push(`round ${round} ${variant} throughput: ${error.message}`)
          log(`round ${round}: ${LABELS[variant]}: FAILED: ${error.message}`)
          continue
        }
        const complete = r.bytes === r.expected && r.writer.sent === r.expected
        log(
          `round ${round}: ${LABELS[variant]}: ${r.mb_s.toFixed(0)} MB/s (${r.bytes} of ${r.expected} bytes in ${r.secs.toFixed(2)} s` +
            `${complete ? '' : ', INCOMPLETE'}; CPU s per GiB: engine ${r.engine_per_gib.toFixed(2)}, reader ${r.reader_per_gib.toFixed(2)}, ` +
            `writer ${r.writer_per_gib.toFixed(2)}; context switches per MiB: reader ${(r.switches / (r.bytes / 2 ** 20)).toFixed(1)}, ` +
            `writer ${(r.writer.switches / (r.bytes / 2 ** 20)).toFixed(1)}; peak RSS reader ${r.rss.toFixed(0)} MiB, writer ${r.writer.rss.toFixed(0)} MiB; ${load(r)})`,
        )
        if (!complete) {
          failures.push(`round ${round} ${variant}: received ${r.bytes} of ${r.expected} bytes`)
          continue
        }
        rates[variant] = r.mb_s
        const f = figures[variant]
        f.mb_s.push(r.mb_s)
        f.engine.push(r.engine_per_gib)
        f.reader.push(r.reader_per_gib)
        f.writer.push(r.writer_per_gib)
        f.clients.push(r.reader_per_gib + r.writer_per_gib)
        f.reader_rss.push(r.rss)
        f.writer_rss.push(r.writer.rss)
      }
      if (withContext) {
        try {
          const r = await bench.rustRelay(engine, args.bytes)
          log(
            `round ${round}: context: Rust SDK relay through the same engine ${r.mb_s.toFixed(0)} MB/s ` +
              `(${r.bytes} bytes; engine ${(r.engine_cpu / (r.bytes / GIB)).toFixed(2)} CPU s per GiB)`,
          )
          if (r.bytes === args.bytes) rust.push(r.mb_s)
        } catch (error) {
          log(`round ${round}: context: Rust SDK relay FAILED: ${error.message}`)
        }
      }
      for (const variant of order) {
        let t
        try {
          t = await bench.roundTrips(engine, variant)
        } catch (error) {
          failures.push(`round ${round} ${variant} round trips: ${error.message}`)
          log(`round ${round}: ${LABELS[variant]}: round trips FAILED: ${error.message}`)
          continue
        }
        const f = figures[variant]
        f.msg_p50.push(t.messages.p50_us)
        f.msg_p99.push(t.messages.p99_us)
        f.trig_p50.push(t.triggers.p50_us)
        f.trig_p99.push(t.triggers.p99_us)
        log(
          `round ${round}: ${LABELS[variant]}: message round trip (${t.messages.count} trips) p50 ${t.messages.p50_us.toFixed(0)} µs, ` +
            `p99 ${t.messages.p99_us.toFixed(0)} µs (${load(t.messages)}); trigger round trip p50 ${t.triggers.p50_us.toFixed(0)} µs, ` +
            `p99 ${t.triggers.p99_us.toFixed(0)} µs (${load(t.triggers)})`,
        )
      }
      for (const variant of order) {
        try {
          const r = await bench.setups(engine, variant)
          figures[variant].setups_serial.push(r.serial)
          figures[variant].setups_parallel.push(r.parallel)
          log(
            `round ${round}: ${LABELS[variant]}: channel setups ${r.serial.toFixed(0)}/s one at a time, ` +
              `${r.parallel.toFixed(0)}/s ${SETUPS_IN_FLIGHT} in flight (${args.setups} each)`,
          )
        } catch (error) {
          failures.push(`round ${round} ${variant} setups: ${error.message}`)
          log(`round ${round}: ${LABELS[variant]}: setups FAILED: ${error.message}`)
        }
      }
    } finally {
      await engine.stop()
    }
    if (rates.ours && rates.published) {
      ratios.push(rates.ours / rates.published)
      log(`round ${round}: ours / published, same round: ${(rates.ours / rates.published).toFixed(2)} ×`)
    }
    if (withContext) {
      try {
        const h = await bench.oneHop(args.bytes)
        hop.push(h.mb_s)
        log(`round ${round}: context: one-hop ceiling (plain WebSocket, no engine) ${h.mb_s.toFixed(0)} MB/s`)
      } catch (error) {
        log(`round ${round}: context: one-hop ceiling FAILED: ${error.message}`)
      }
    }
  }

  // ---------------------------------------------------------------- summary
  log('')
  log(`medians over ${args.rounds} rounds (ranges in brackets):`)
  for (const variant of variants) {
    const f = figures[variant]
    log(
      `  ${LABELS[variant]}: ${median(f.mb_s).toFixed(0)} MB/s [${range(f.mb_s)}] (${f.mb_s.length} complete rounds); ` +
        `CPU s per GiB: engine ${median(f.engine).toFixed(2)} [${range(f.engine, 2)}], reader ${median(f.reader).toFixed(2)} [${range(f.reader, 2)}], ` +
        `writer ${median(f.writer).toFixed(2)} [${range(f.writer, 2)}]; peak RSS reader ${median(f.reader_rss).toFixed(0)} MiB, ` +
        `writer ${median(f.writer_rss).toFixed(0)} MiB; message round trip p50 ${median(f.msg_p50).toFixed(0)} µs ` +
        `[${range(f.msg_p50)}], p99 ${median(f.msg_p99).toFixed(0)} µs; trigger round trip p50 ${median(f.trig_p50).toFixed(0)} µs ` +
        `[${range(f.trig_p50)}], p99 ${median(f.trig_p99).toFixed(0)} µs`,
    )
  }
  if (rust.length) log(`  context: Rust SDK relay through the same engine ${median(rust).toFixed(0)} MB/s [${range(rust)}]`)
  if (hop.length) log(`  context: one-hop ceiling (plain WebSocket, no engine) ${median(hop).toFixed(0)} MB/s [${range(hop)}]`)
  const published = figures.published ? median(figures.published.mb_s) : NaN
  const ours = figures.ours ? median(figures.ours.mb_s) : NaN
  if (published > 0 && ours > 0) {
    const ratio = ours / published
    log(
      `ours / published: ${ratio.toFixed(2)} × (ratio of the medians; target ≥ 3 ×: ${ratio >= 3 ? 'met' : 'NOT met'}); ` +
        `per round ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`,
    )
  }
  const setupRatio = (key) => {
    const published = figures.published ? median(figures.published[key]) : NaN
    const ours = figures.ours ? median(figures.ours[key]) : NaN
    return ours / published
  }
  for (const variant of variants) {
    const f = figures[variant]
    log(
      `  ${LABELS[variant]}: channel setups ${median(f.setups_serial).toFixed(0)}/s one at a time [${range(f.setups_serial)}], ` +
        `${median(f.setups_parallel).toFixed(0)}/s ${SETUPS_IN_FLIGHT} in flight [${range(f.setups_parallel)}]`,
    )
  }
  if (variants.length === 2) {
    const serial = setupRatio('setups_serial')
    const parallel = setupRatio('setups_parallel')
    log(
      `ours / published, channel setups: ${serial.toFixed(2)} × one at a time, ${parallel.toFixed(2)} × ${SETUPS_IN_FLIGHT} in flight ` +
        `(target ≥ 3 ×: ${serial >= 3 && parallel >= 3 ? 'met' : 'NOT met'})`,
    )
  }
  for (const failure of failures) log(`failure: ${failure}`)

  log('')
  const size = args.bytes % GIB === 0 ? `${args.bytes / GIB} GiB` : `${(args.bytes / 2 ** 20).toFixed(0)} MiB`
  log(`| client | ${size} throughput | vs published | engine / reader / writer CPU s per GiB | message round trip p50 / p99 | trigger round trip p50 / p99 |`)
  log('|---|---|---|---|---|---|')
  for (const variant of variants) {
    const f = figures[variant]
    const versus = published > 0 ? (median(f.mb_s) / published).toFixed(2) : '—'
    log(
      `| ${LABELS[variant]} | ${median(f.mb_s).toFixed(0)} MB/s (${range(f.mb_s)}) | ${versus} × | ` +
        `${median(f.engine).toFixed(2)} / ${median(f.reader).toFixed(2)} / ${median(f.writer).toFixed(2)} | ` +
        `${median(f.msg_p50).toFixed(0)} / ${median(f.msg_p99).toFixed(0)} µs | ${median(f.trig_p50).toFixed(0)} / ${median(f.trig_p99).toFixed(0)} µs |`,
    )
  }
  if (rust.length) log(`| context: Rust SDK relay, same engine | ${median(rust).toFixed(0)} MB/s (${range(rust)}) | ${(median(rust) / published).toFixed(2)} × | — | — | — |`)
  if (hop.length) log(`| context: one-hop ceiling, no engine | ${median(hop).toFixed(0)} MB/s (${range(hop)}) | — | — | — | — |`)
  return failures.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error)
    process.exit(2)
  },
)
