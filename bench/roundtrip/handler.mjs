// The serving side of the round-trip benchmark, written for the published client's API:
// registers `rt::noop` (returns its input) and serves until stdin closes.
import { registerWorker } from 'iii-sdk'

const iii = registerWorker(process.env.III_URL, { workerName: 'rt-handler' })
iii.registerFunction('rt::noop', async (data) => data)
setTimeout(() => console.log('ready'), 300)
process.stdin.resume()
process.stdin.on('end', () => iii.shutdown())
