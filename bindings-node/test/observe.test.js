'use strict'
// What a Node program can see of its own traffic: per-channel statistics on both ends, and the
// served call's W3C trace context (currentInvocation), carried on to the calls a handler makes.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { registerWorker, currentInvocation } = require('..')
const { startEngine } = require('./engine')

const MiB = 1024 * 1024
let engine
let worker

before(async () => {
  engine = await startEngine()
  worker = registerWorker(engine.url)
})

after(async () => {
  if (worker) await worker.shutdown()
  if (engine) await engine.stop()
})

/** GET `path` on the engine's worker port, as parsed JSON. */
function getJson(path) {
  const port = new URL(engine.url).port
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (response) => {
        let body = ''
        response.on('data', (chunk) => (body += chunk))
        response.on('end', () => resolve(JSON.parse(body)))
      })
      .on('error', reject)
  })
}

test('reader and writer report their bytes, frames, messages and blocked time', async () => {
  const channel = await worker.createChannel()
  const size = 2 * MiB + 77
  const reading = (async () => {
    const chunks = []
    for await (const chunk of channel.reader) chunks.push(chunk)
    return Buffer.concat(chunks).length
  })()
  await channel.writer.sendMessage('start')
  await channel.writer.write(Buffer.alloc(size, 7))
  await channel.writer.close()
  assert.equal(await reading, size)
  const written = channel.writer.stats()
  assert.equal(written.bytes, size)
  assert.equal(written.messages, 1)
  assert.ok(written.frames >= Math.floor(size / 65536), JSON.stringify(written))
  const read = channel.reader.stats()
  assert.equal(read.bytes, size)
  assert.equal(read.frames, written.frames)
  assert.equal(read.messages, 1)
})

test('a writer ahead of a late reader reports the time it was held back', async () => {
  const channel = await worker.createChannel(4) // 256 KiB of buffer
  const pause = 500
  const reading = (async () => {
    await new Promise((resolve) => setTimeout(resolve, pause))
    let total = 0
    for await (const chunk of channel.reader) total += chunk.length
    return total
  })()
  // More than the channel's buffer and both sockets' kernel buffers hold.
  const started = Date.now()
  await channel.writer.write(Buffer.alloc(32 * MiB, 3))
  await channel.writer.close()
  const writing = Date.now() - started
  assert.equal(await reading, 32 * MiB)
  // Held back at least while the reader slept; never longer than the write took.
  const { blockedMs } = channel.writer.stats()
  assert.ok(blockedMs >= pause * 0.5 && blockedMs <= writing + 50, `blocked ${blockedMs} ms of ${writing}`)
})

test('the engine shows a live channel in /status while its writer waits', async () => {
  const channel = await worker.createChannel(8)
  await channel.writer.write(Buffer.alloc(256 * 1024, 1))
  // The engine reads what the socket holds on its own time.
  let entry
  const deadline = Date.now() + 10000
  do {
    const status = await getJson('/status')
    entry = status.channels.find((c) => c.id === channel.writerRef.channel_id)
    if (entry.bytes_in === 256 * 1024) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  } while (Date.now() < deadline)
  assert.equal(entry.bytes_in, 256 * 1024)
  assert.equal(entry.reader, 'waiting')
  assert.equal(channel.writer.stats().bytes, 256 * 1024)
  await channel.writer.close()
  const drained = []
  for await (const chunk of channel.reader) drained.push(chunk)
  assert.equal(Buffer.concat(drained).length, 256 * 1024)
})

test('a handler sees the trace context it was called with and carries it on', async () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  worker.registerFunction('observe::node-inner', async () => {
    const call = currentInvocation()
    return { traceparent: call.traceparent, baggage: call.baggage ?? null }
  })
  worker.registerFunction('observe::node-outer', async () => {
    const call = currentInvocation()
    const onward = await worker.trigger({ function_id: 'observe::node-inner', payload: {} })
    // Only the fields the call has: no tracestate was sent.
    return { here: call.traceparent, keys: Object.keys(call).sort(), onward }
  })
  assert.equal(currentInvocation(), undefined)
  const result = await worker.trigger({
    function_id: 'observe::node-outer',
    payload: {},
    traceparent,
    baggage: 'tenant=acme',
  })
  assert.deepEqual(result, {
    here: traceparent,
    keys: ['baggage', 'function_id', 'invocation_id', 'traceparent'],
    onward: { traceparent, baggage: 'tenant=acme' },
  })
})

test('an http() function sees the trace headers of its request', async () => {
  const { http: httpFunction } = require('..')
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  worker.registerFunction(
    'observe::node-http',
    httpFunction(async (_req, res) => {
      const call = currentInvocation()
      res.status(200)
      res.headers({ 'content-type': 'application/json' })
      res.stream.end(JSON.stringify({ traceparent: call.traceparent, tracestate: call.tracestate }))
    }),
  )
  worker.registerTrigger({
    type: 'http',
    function_id: 'observe::node-http',
    config: { api_path: '/observe/traced', http_method: 'GET' },
  })
  await worker.ready()
  const url = new URL('/observe/traced', engine.httpUrl)
  const body = await new Promise((resolve, reject) => {
    http
      .get(url, { headers: { traceparent, tracestate: 'vendor=1' } }, (response) => {
        let text = ''
        response.on('data', (chunk) => (text += chunk))
        response.on('end', () => resolve(JSON.parse(text)))
      })
      .on('error', reject)
  })
  assert.deepEqual(body, { traceparent, tracestate: 'vendor=1' })
})
