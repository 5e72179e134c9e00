// HTTP-triggered functions written with the published HTTP helper (@iii-dev/helpers/http):
// status and headers through the response object, a streamed body, the request body read
// from its stream, and a plain result as the response.
import { registerWorker } from 'iii-sdk'
import { http } from '@iii-dev/helpers/http'
import { report } from './report.mjs'

const iii = registerWorker(process.env.III_URL, { workerName: 'compat-http' })
iii.registerFunction('compat::echo', http(async (req, res) => {
  const chunks = []
  for await (const chunk of req.request_body.stream) chunks.push(chunk)
  res.status(201)
  res.headers({ 'content-type': 'text/plain', 'x-compat': 'yes' })
  res.stream.write('got ')
  // The body's end is awaited before close(): the published client drops what is still
  // buffered when close() comes first (ours does not; see the package README).
  await new Promise((resolve) => res.stream.end(Buffer.concat(chunks).toString().toUpperCase(), resolve))
  res.close()
}))
iii.registerTrigger({ type: 'http', function_id: 'compat::echo', config: { api_path: '/compat/echo', http_method: 'POST' } })
iii.registerFunction('compat::plain', http(async (req) => ({
  status_code: 202,
  body: { name: req.path_params.name, q: req.query_params.q },
})))
iii.registerTrigger({ type: 'http', function_id: 'compat::plain', config: { api_path: '/compat/plain/:name', http_method: 'GET' } })
iii.registerFunction('compat::meta', async (data, metadata) => ({ status_code: 200, body: { metadata, method: data.method } }))
iii.registerTrigger({ type: 'http', function_id: 'compat::meta', config: { api_path: '/compat/meta', http_method: 'GET' }, metadata: { route: 'meta' } })
await new Promise((resolve) => setTimeout(resolve, 500))
const out = {}
let response = await fetch(`${process.env.III_HTTP_URL}/compat/echo`, { method: 'POST', body: 'hello' })
out.echo = { status: response.status, type: response.headers.get('content-type'), 'x-compat': response.headers.get('x-compat'), body: await response.text() }
response = await fetch(`${process.env.III_HTTP_URL}/compat/plain/ann?q=1`)
out.plain = { status: response.status, body: await response.json() }
response = await fetch(`${process.env.III_HTTP_URL}/compat/meta`)
out['trigger metadata'] = { status: response.status, body: await response.json() }
await iii.shutdown()
report(out)
