// The calling side of the round-trip benchmark, written for the published client's API: after
// a warm-up, times N `await trigger()` calls of `rt::noop` one after another and prints one
// JSON line with p50 and p99 in microseconds.
import { registerWorker } from 'iii-sdk'

const calls = Number(process.argv[2] ?? 3000)
const iii = registerWorker(process.env.III_URL, { workerName: 'rt-caller' })
const request = { function_id: 'rt::noop', payload: { n: 1 } }
for (let i = 0; i < 200; i++) await iii.trigger(request)
const samples = []
for (let i = 0; i < calls; i++) {
  const started = process.hrtime.bigint()
  await iii.trigger(request)
  samples.push(Number(process.hrtime.bigint() - started) / 1000)
}
samples.sort((a, b) => a - b)
const at = (q) => Math.round(samples[Math.floor(samples.length * q)])
console.log(JSON.stringify({ p50_us: at(0.5), p99_us: at(0.99) }))
await iii.shutdown()
process.exit(0)
