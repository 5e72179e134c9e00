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
  assert.ok(written.blockedMs >= 0)
  const read = channel.reader.stats()
  assert.equal(read.bytes, size)
  assert.equal(read.frames, written.frames)
  assert.equal(read.messages, 1)
})

test('the engine shows a live channel in /status while its writer waits', async () => {
  const channel = await worker.createChannel(8)
  await channel.writer.write(Buffer.alloc(256 * 1024, 1))
  const status = await getJson('/status')
  const entry = status.channels.find((c) => c.id === channel.writerRef.channel_id)
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
    return { here: call.traceparent, id: typeof call.invocation_id, onward }
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
    id: 'string',
    onward: { traceparent, baggage: 'tenant=acme' },
  })
})
