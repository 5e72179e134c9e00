'use strict'
// The guide flow (a producer passes readerRef to `files::process`, which reads the stream)
// and the stream contract of ChannelWriter.stream / ChannelReader.stream.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { once } = require('node:events')
const { Readable } = require('node:stream')
const { pipeline } = require('node:stream/promises')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { registerWorker, TriggerAction } = require('..')
const { createChannel } = require('../subpath/helpers')
const { startEngine } = require('./engine')

let engine
let worker

before(async () => {
  engine = await startEngine()
  worker = registerWorker(engine.url)

  // Guide 004, as written.
  worker.registerFunction('files::process', async (input) => {
    let bytes = 0

    for await (const chunk of input.reader.stream) {
      bytes += Buffer.isBuffer(chunk) ? chunk.length : Buffer.byteLength(chunk)
    }

    return { bytes }
  })

  worker.registerFunction('files::digest', async (input) => {
    const hash = crypto.createHash('sha256')
    let bytes = 0
    for await (const chunk of input.reader.stream) {
      hash.update(chunk)
      bytes += chunk.length
    }
    return { bytes, sha256: hash.digest('hex') }
  })

  worker.registerFunction('files::progress', async (input) => {
    for (let i = 1; i <= 3; i++) input.output.sendMessage(JSON.stringify({ progress: i }))
    input.output.stream.end(Buffer.from('result'))
    return { ok: true }
  })
})

after(async () => {
  if (worker) await worker.shutdown()
  if (engine) await engine.stop()
})

test('guide: write, end, then trigger with readerRef', async () => {
  const channel = await worker.createChannel()
  channel.writer.stream.write(Buffer.from('first chunk'))
  channel.writer.stream.write(Buffer.from('second chunk'))
  channel.writer.stream.end() // signals completion

  const result = await worker.trigger({
    function_id: 'files::process',
    payload: { filename: 'report.csv', reader: channel.readerRef },
  })
  assert.deepEqual(result, { bytes: 'first chunksecond chunk'.length })
})

test('createChannel from iii-sdk/helpers; refs are plain JSON', async () => {
  const channel = await createChannel(worker)
  assert.equal(channel.readerRef.direction, 'read')
  assert.equal(channel.writerRef.direction, 'write')
  assert.deepEqual(JSON.parse(JSON.stringify(channel.readerRef)), channel.readerRef)
  channel.writer.stream.end(Buffer.from('file contents'))
  const data = await channel.reader.readAll()
  assert.equal(data.toString(), 'file contents')
})

test('stream.pipeline of 16 MiB into a remote reader keeps content and order', async () => {
  const channel = await worker.createChannel()
  const expected = crypto.createHash('sha256')
  const total = 16 * 1024 * 1024
  function* chunks() {
    let sent = 0
    let n = 0
    while (sent < total) {
      const size = Math.min(100_000 + (n++ % 7) * 1000, total - sent)
      const chunk = crypto.randomBytes(size)
      expected.update(chunk)
      sent += size
      yield chunk
    }
  }
  const result = worker.trigger({
    function_id: 'files::digest',
    payload: { reader: channel.readerRef },
    timeoutMs: 120_000,
  })
  await pipeline(Readable.from(chunks()), channel.writer.stream)
  assert.deepEqual(await result, { bytes: total, sha256: expected.digest('hex') })
})

test('sendMessage and onMessage alongside data', async () => {
  const output = await worker.createChannel()
  const messages = []
  output.reader.onMessage((msg) => messages.push(JSON.parse(msg)))
  const result = await worker.trigger({
    function_id: 'files::progress',
    payload: { output: output.writerRef },
  })
  assert.deepEqual(result, { ok: true })
  const data = await output.reader.readAll()
  assert.equal(data.toString(), 'result')
  assert.deepEqual(messages, [{ progress: 1 }, { progress: 2 }, { progress: 3 }])
})

test('an aborted writer makes the Readable emit an error with a code', async () => {
  const channel = await worker.createChannel()
  channel.writer.stream.write(Buffer.from('partial'))
  await channel.writer.abort('boom')
  const stream = channel.reader.stream
  const errored = once(stream, 'error').catch((e) => [e])
  stream.resume() // a Readable pulls from the core only when consumed
  const [error] = await errored
  assert.equal(error.code, 'channel_aborted')
  assert.match(error.message, /boom/)
})

test('Writable.destroy(err) aborts the channel', async () => {
  const channel = await worker.createChannel()
  const stream = channel.writer.stream
  const errored = once(stream, 'error')
  stream.write(Buffer.from('partial'))
  stream.destroy(new Error('producer failed'))
  assert.equal((await errored)[0].message, 'producer failed')
  await assert.rejects(channel.reader.readAll(), (error) => error.code === 'channel_aborted')
})

test('errors carry a code: unknown function, handler failure', async () => {
  await assert.rejects(
    worker.trigger({ function_id: 'nope::missing', payload: {}, timeoutMs: 5000 }),
    (error) => typeof error.code === 'string' && error.code.length > 0,
  )
  worker.registerFunction('fails::always', async () => {
    const error = new Error('it broke')
    error.code = 'custom_failure'
    throw error
  })
  await assert.rejects(worker.trigger({ function_id: 'fails::always', payload: {} }), (error) => {
    assert.equal(error.code, 'custom_failure')
    assert.match(error.message, /it broke/)
    return true
  })
  // The remote exception's message reaches the caller as the published clients send it (the
  // message alone), and its stack, with its type, beside it.
  worker.registerFunction('fails::typed', () => {
    throw new TypeError('bad shape')
  })
  await assert.rejects(worker.trigger({ function_id: 'fails::typed', payload: {} }), (error) => {
    assert.equal(error.name, 'InvocationError')
    assert.equal(error.code, 'invocation_failed')
    assert.equal(error.message, 'invocation_failed: bad shape')
    assert.match(error.stacktrace, /TypeError: bad shape\n\s+at /)
    return true
  })
})

test('TriggerAction.Void() resolves without a result', async () => {
  let called
  const seen = new Promise((resolve) => (called = resolve))
  worker.registerFunction('void::target', async (input) => {
    called(input)
    return { ignored: true }
  })
  assert.equal(
    await worker.trigger({ function_id: 'void::target', payload: { n: 1 }, action: TriggerAction.Void() }),
    undefined,
  )
  assert.equal((await seen).n, 1)
})

test('TriggerAction.Enqueue reaches the engine, which has no queue provider: enqueue_error', async () => {
  await assert.rejects(
    worker.trigger({ function_id: 'void::target', payload: {}, action: TriggerAction.Enqueue({ queue: 'jobs' }) }),
    (error) => {
      assert.equal(error.code, 'enqueue_error')
      assert.match(error.message, /queue/i)
      return true
    },
  )
  await assert.rejects(worker.trigger({ function_id: 'void::target', payload: {}, action: 'void' }), TypeError)
  await assert.rejects(
    worker.trigger({ function_id: 'void::target', payload: {}, action: { type: 'teleport' } }),
    /unknown trigger action/,
  )
})

test('ready() resolves once registrations have reached the engine', async () => {
  const other = registerWorker(engine.url)
  try {
    other.registerFunction('ready::probe', async () => 'here')
    await other.ready()
    // Without ready() this call could arrive before the registration: it would fail fast.
    assert.equal(await worker.trigger({ function_id: 'ready::probe', payload: {}, timeoutMs: 5000 }), 'here')
  } finally {
    await other.shutdown()
  }
  const stopped = registerWorker(engine.url)
  await stopped.shutdown()
  await assert.rejects(stopped.ready(), (error) => typeof error.code === 'string')
})

test('a worker with functions stays alive; shutdown() lets the process exit', async () => {
  const script = `
    const { registerWorker } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    const iii = registerWorker(process.argv[1])
    iii.registerFunction('alive::fn', async () => 1)
    setTimeout(async () => { console.log('shutting down'); await iii.shutdown() }, 300)
  `
  const child = spawn(process.execPath, ['-e', script, engine.url], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const [code, signal] = await once(child, 'exit')
  clearTimeout(timer)
  assert.equal(signal, null, 'the process had to be killed: something kept it alive')
  assert.equal(code, 0)
  assert.match(out, /shutting down/)
})
