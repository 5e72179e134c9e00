// A function the engine calls over HTTP (registerFunction(id, HttpInvocationConfig)): the
// engine posts the payload as JSON to the program's own little HTTP server and the JSON
// answer is the result; a failing endpoint's status comes back as an InvocationError.
import { createServer } from 'node:http'
import { registerWorker, InvocationError } from 'iii-sdk'
import { report } from './report.mjs'

const seen = []
const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString())
    seen.push({ path: req.url, 'content-type': req.headers['content-type'], function: req.headers['x-iii-function-path'], n: body.n })
    const [status, answer] = req.url === '/triple' ? [200, { n: body.n * 3 }] : [503, { busy: true }]
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
  })
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const base = `http://127.0.0.1:${server.address().port}`

const iii = registerWorker(process.env.III_URL, { workerName: 'compat-http-invoked' })
const ref = iii.registerFunction('compat::triple', { url: `${base}/triple`, method: 'POST', timeout_ms: 5000 })
iii.registerFunction('compat::busy', { url: `${base}/busy` })
await new Promise((resolve) => setTimeout(resolve, 500))
const out = { ref_id: ref.id }
out.triple = await iii.trigger({ function_id: 'compat::triple', payload: { n: 14 } })
try {
  await iii.trigger({ function_id: 'compat::busy', payload: { n: 1 } })
} catch (error) {
  out.busy = { isInvocationError: error instanceof InvocationError, code: error.code, message: error.message }
}
out.seen = seen
await iii.shutdown()
server.close()
report(out)
