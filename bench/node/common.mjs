// Helpers the benchmark driver (bench.mjs) and the worker (worker.mjs) share. Imports
// neither client.
import * as fs from 'node:fs'

export const CHUNK = 64 * 1024
export const WARMUP_TRIPS = 200
export const GIB = 2 ** 30

// Linux's USER_HZ: what /proc/stat and /proc/<pid>/stat count in (100 on every Linux
// architecture Node runs on; the kernel ABI fixes it there).
const CLOCK_TICKS = 100

/** Writes one protocol line to stdout (the driver reads only these). */
export function emit(line) {
  fs.writeSync(1, `${line}\n`)
}

/**
 * CPU seconds the whole machine has spent so far (every core), from /proc/stat: busy (user,
 * nice, system, irq, softirq) and stolen by the hypervisor. With our own processes' CPU
 * subtracted, busy shows what else ran during a measurement.
 */
export function machineCpu() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number)
  const [user, nice, system, , , irq, softirq, steal] = fields
  return { busy: (user + nice + system + irq + softirq) / CLOCK_TICKS, steal: steal / CLOCK_TICKS }
}

/** The machine's busy and stolen CPU seconds since `start` (a machineCpu() reading). */
export function since(start) {
  const now = machineCpu()
  return { system_busy: now.busy - start.busy, steal: now.steal - start.steal }
}

/** CPU seconds (user + system, every thread) of process `pid`, from /proc. */
export function cpuSecondsOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** This process's CPU seconds (user + system, every thread). */
export function ownCpu() {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/** Context switches of this process so far, every thread (voluntary and involuntary). */
export function contextSwitches() {
  const usage = process.resourceUsage()
  return usage.voluntaryContextSwitches + usage.involuntaryContextSwitches
}

/** A 64 KiB chunk of pseudo-random bytes (not all zeros, so nothing can shortcut them). */
export function chunkBytes() {
  const data = Buffer.alloc(CHUNK)
  let state = 0x9e3779b9
  for (let i = 0; i < CHUNK; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    data[i] = state & 0xff
  }
  return data
}

/** p50 and p99 of `samples` (µs). */
export function percentiles(samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const pick = (q) => sorted[Math.round((sorted.length - 1) * q)]
  return { count: sorted.length, p50_us: pick(0.5), p99_us: pick(0.99) }
}
