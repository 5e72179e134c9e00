'use strict'
// http(): the guide's file download and SSE handlers served through the engine's HTTP port,
// request bodies read as streams, and handlers that fail before or during the body.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const nodeHttp = require('node:http')
const { pipeline } = require('node:stream/promises')

const { registerWorker, http } = require('..')
const { startEngine } = require('./engine')

const SSE_INTERVAL_MS = 200
const FILE_SIZE = 5 * 1024 * 1024 + 12345

let engine
let worker
let dir
let fileContents
const sseWritten = [] // when the SSE handler wrote each frame

before(async () => {
  engine = await startEngine()
  worker = registerWorker(engine.url)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-http-'))
  fileContents = crypto.randomBytes(FILE_SIZE)
  fs.writeFileSync(path.join(dir, 'report.bin'), fileContents)

  // Guide 001, example 1 (the file's directory is the temp dir).
  worker.registerFunction(
    'files::download',
    http(async (req, res) => {
      const filePath = path.join(dir, req.path_params.filename)

      res.status(200)
      res.headers({
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${req.path_params.filename}"`,
      })

      await pipeline(fs.createReadStream(filePath), res.stream)
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'files::download',
    config: { api_path: '/files/:filename', http_method: 'GET' },
  })

  // Guide 001, example 2, with a short interval (and a record of when each frame was written).
  worker.registerFunction(
    'events::stream',
    http(async (_req, res) => {
      res.status(200)
      res.headers({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      })

      for (let i = 1; i <= 5; i++) {
        const frame = `id: ${i}\nevent: progress\ndata: ${JSON.stringify({ step: i, total: 5 })}\n\n`
        sseWritten.push(Date.now())
        res.stream.write(Buffer.from(frame))
        await new Promise((r) => setTimeout(r, SSE_INTERVAL_MS))
      }

      const done = `id: 6\nevent: done\ndata: ${JSON.stringify({ message: 'complete' })}\n\n`
      sseWritten.push(Date.now())
      res.stream.write(Buffer.from(done))
      res.stream.end()
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'events::stream',
    config: { api_path: '/events/stream', http_method: 'GET' },
  })

  // Echoes the request: the streamed body's digest, and what the request object holds.
  worker.registerFunction(
    'echo::request',
    http(async (req, res) => {
      const hash = crypto.createHash('sha256')
      let bytes = 0
      for await (const chunk of req.request_body.stream) {
        hash.update(chunk)
        bytes += chunk.length
      }
      await res.status(201)
      await res.headers({ 'content-type': 'application/json', 'x-echo': ['a', 'b'] })
      res.stream.end(
        JSON.stringify({
          method: req.method,
          path: req.path,
          path_params: req.path_params,
          query_params: req.query_params,
          header: req.headers['x-test'],
          body: req.body,
          bytes,
          sha256: hash.digest('hex'),
        }),
      )
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'echo::request',
    config: { api_path: '/echo/:id', http_method: 'POST' },
  })

  // Sends part of a body, then throws.
  worker.registerFunction(
    'fails::midway',
    http(async (_req, res) => {
      res.status(200)
      res.headers({ 'content-type': 'application/octet-stream' }) // chunked: only an abort cuts it
      await new Promise((resolve, reject) =>
        res.stream.write(Buffer.alloc(64 * 1024, 7), (error) => (error ? reject(error) : resolve())),
      )
      await new Promise((r) => setTimeout(r, 50))
      throw new Error('disk on fire')
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'fails::midway',
    config: { api_path: '/fails/midway', http_method: 'GET' },
  })

  // Throws before any byte.
  worker.registerFunction(
    'fails::early',
    http(async (_req, res) => {
      res.status(200)
      const error = new Error('no such report')
      error.code = 'report_missing'
      throw error
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'fails::early',
    config: { api_path: '/fails/early', http_method: 'GET' },
  })

  // Returns a plain result: the whole response.
  worker.registerFunction(
    'plain::result',
    http(async () => ({ status_code: 202, headers: { 'x-plain': '1' }, body: { accepted: true } })),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'plain::result',
    config: { api_path: '/plain', http_method: 'GET' },
  })

  // res.sendFile: the file name from a query parameter (which the engine does not check).
  worker.registerFunction(
    'files::send',
    http(async (req, res) => {
      await res.sendFile(dir, req.query_params.name ?? '')
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'files::send',
    config: { api_path: '/send', http_method: 'GET' },
  })

  // Registrations have reached the engine once ready() resolves: no polling for routes.
  await worker.ready()
})

test('res.sendFile serves a plain name from its directory: 400 for a bad name, 404 for none', async () => {
  fs.writeFileSync(path.join(path.dirname(dir), `${path.basename(dir)}-secret.txt`), 'not for download')
  try {
    const ok = await fetch(`${engine.httpUrl}/send?name=report.bin`)
    assert.equal(ok.status, 200)
    assert.equal(ok.headers.get('content-length'), String(FILE_SIZE))
    assert.ok(Buffer.from(await ok.arrayBuffer()).equals(fileContents))
    const cases = [
      [`..%2F${path.basename(dir)}-secret.txt`, 400],
      ['..', 400],
      ['a%5Cb', 400],
      ['missing.bin', 404],
    ]
    for (const [name, status] of cases) {
      const response = await fetch(`${engine.httpUrl}/send?name=${name}`)
      const body = await response.text()
      assert.equal(response.status, status, `${name}: ${body}`)
      assert.ok(!body.includes('not for download') && !body.includes(dir), body)
    }
  } finally {
    fs.rmSync(path.join(path.dirname(dir), `${path.basename(dir)}-secret.txt`), { force: true })
  }
})

after(async () => {
  if (worker) await worker.shutdown()
  if (engine) await engine.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

/** GET with node:http; resolves `{ status, headers, body, complete, error }` once closed. */
function rawGet(url) {
  return new Promise((resolve, reject) => {
    const request = nodeHttp.get(url, (response) => {
      const chunks = []
      let error = null
      response.on('data', (chunk) => chunks.push(chunk))
      response.on('error', (e) => (error = e))
      response.on('close', () =>
        resolve({
          status: response.statusCode,
          headers: response.headers,
          body: Buffer.concat(chunks),
          complete: response.complete,
          error,
        }),
      )
    })
    request.on('error', reject)
  })
}

test('guide download handler serves a 5 MiB file byte-exact (fetch)', async () => {
  const response = await fetch(`${engine.httpUrl}/files/report.bin`)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'application/octet-stream')
  assert.equal(response.headers.get('content-disposition'), 'attachment; filename="report.bin"')
  const body = Buffer.from(await response.arrayBuffer())
  assert.equal(body.length, FILE_SIZE)
  assert.ok(body.equals(fileContents), 'the downloaded bytes differ from the file')
})

test('guide download handler through node:http: complete response, same digest', async () => {
  const result = await rawGet(`${engine.httpUrl}/files/report.bin`)
  assert.equal(result.status, 200)
  assert.equal(result.complete, true)
  assert.equal(
    crypto.createHash('sha256').update(result.body).digest('hex'),
    crypto.createHash('sha256').update(fileContents).digest('hex'),
  )
})

test('guide SSE handler: events arrive incrementally and in order', async () => {
  sseWritten.length = 0
  const response = await fetch(`${engine.httpUrl}/events/stream`)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  assert.equal(response.headers.get('cache-control'), 'no-cache')
  const decoder = new TextDecoder()
  let text = ''
  const events = []
  for await (const chunk of response.body) {
    text += decoder.decode(chunk, { stream: true })
    let end
    while ((end = text.indexOf('\n\n')) !== -1) {
      const frame = text.slice(0, end)
      text = text.slice(end + 2)
      const fields = Object.fromEntries(frame.split('\n').map((line) => line.split(/: (.*)/s).slice(0, 2)))
      // Incremental: event n is here before the handler wrote event n + 1.
      assert.equal(sseWritten.length, events.length + 1, `event ${fields.id} arrived late`)
      events.push({ id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data) })
    }
  }
  assert.equal(text, '')
  assert.deepEqual(
    events.map((e) => e.id),
    [1, 2, 3, 4, 5, 6],
  )
  assert.deepEqual(events[2], { id: 3, event: 'progress', data: { step: 3, total: 5 } })
  assert.deepEqual(events[5], { id: 6, event: 'done', data: { message: 'complete' } })
})

test('request: params, headers, JSON body, streamed request_body; status and headers', async () => {
  const payload = { hello: 'world', list: [1, 2, 3] }
  const response = await fetch(`${engine.httpUrl}/echo/42?q=x`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test': 'yes' },
    body: JSON.stringify(payload),
  })
  assert.equal(response.status, 201)
  assert.equal(response.headers.get('x-echo'), 'a, b')
  const echo = await response.json()
  const raw = Buffer.from(JSON.stringify(payload))
  assert.deepEqual(echo, {
    method: 'POST',
    path: '/echo/:id',
    path_params: { id: '42' },
    query_params: { q: 'x' },
    header: 'yes',
    body: payload,
    bytes: raw.length,
    sha256: crypto.createHash('sha256').update(raw).digest('hex'),
  })
})

test('a large request body streams through request_body', async () => {
  const data = crypto.randomBytes(3 * 1024 * 1024 + 7)
  const response = await fetch(`${engine.httpUrl}/echo/big`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  })
  assert.equal(response.status, 201)
  const echo = await response.json()
  assert.equal(echo.body, null)
  assert.equal(echo.bytes, data.length)
  assert.equal(echo.sha256, crypto.createHash('sha256').update(data).digest('hex'))
})

test('a handler that throws mid-body leaves the client an incomplete response', async () => {
  const result = await rawGet(`${engine.httpUrl}/fails/midway`)
  assert.equal(result.status, 200)
  assert.equal(result.complete, false, 'the response looked complete')
  assert.ok(result.body.length >= 1 && result.body.length < 1 << 20, `got ${result.body.length} bytes`)
  assert.ok(result.body.subarray(0, 1).equals(Buffer.from([7])))
  // fetch sees the cut as a failed body read.
  const response = await fetch(`${engine.httpUrl}/fails/midway`)
  await assert.rejects(response.arrayBuffer())
})

test('a handler that throws before any byte gives a 500 with its error code, not its message', async () => {
  const response = await fetch(`${engine.httpUrl}/fails/early`)
  assert.equal(response.status, 500)
  const body = await response.json()
  assert.equal(body.error.code, 'report_missing')
  // The message (which may hold server paths or a traceback) stays in the engine's log.
  assert.doesNotMatch(JSON.stringify(body), /no such report/)
})

test('a handler returning a plain result makes the whole response', async () => {
  const response = await fetch(`${engine.httpUrl}/plain`)
  assert.equal(response.status, 202)
  assert.equal(response.headers.get('x-plain'), '1')
  assert.deepEqual(await response.json(), { accepted: true })
})

test('http is exported by the ES module entry point too', async () => {
  const esm = await import('../index.mjs')
  assert.equal(esm.http, http)
  assert.equal(typeof esm.HttpResponse, 'function')
})
