'use strict'
// Reader and writer contracts: onMessage without reading, close() during a pending read,
// and backpressure from a slow reader into the writer's Writable (bounded memory).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')

const { registerWorker } = require('..')
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

/** Resolves once `check()` holds (polling), or rejects after `ms`. */
async function eventually(check, ms = 5000) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('onMessage alone (nothing reads) receives every message in order', async () => {
  const channel = await worker.createChannel()
  const messages = []
  channel.reader.onMessage((message) => messages.push(message))
  for (let i = 1; i <= 5; i++) await channel.writer.sendMessage(JSON.stringify({ n: i }))
  await eventually(() => messages.length === 5)
  assert.deepEqual(
    messages.map((m) => JSON.parse(m).n),
    [1, 2, 3, 4, 5],
  )
  // Messages sent later still arrive, still without a read.
  await channel.writer.sendMessage('late')
  await eventually(() => messages.length === 6)
  assert.equal(messages[5], 'late')
  await channel.writer.close()
})

test('onMessage registered after messages were sent gets the earlier ones first', async () => {
  const channel = await worker.createChannel()
  await channel.writer.sendMessage('one')
  await channel.writer.sendMessage('two')
  await new Promise((r) => setTimeout(r, 50))
  const messages = []
  channel.reader.onMessage((message) => messages.push(message))
  await channel.writer.sendMessage('three')
  await eventually(() => messages.length === 3)
  assert.deepEqual(messages, ['one', 'two', 'three'])
})

test('close() on a reader during a pending read rejects the read with reader_closed', async () => {
  const channel = await worker.createChannel()
  const pending = channel.reader.read()
  let settled = false
  pending.then(
    () => (settled = true),
    () => (settled = true),
  )
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(settled, false, 'the read settled although nothing was written')
  await channel.reader.close()
  await assert.rejects(pending, (error) => {
    assert.equal(error.code, 'reader_closed')
    return true
  })
  // Later reads fail the same way; the writer learns that the reader is gone.
  await assert.rejects(channel.reader.read(), (error) => error.code === 'reader_closed')
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 200; i++) await channel.writer.write(Buffer.alloc(64 * 1024))
      await channel.writer.close()
    })(),
    (error) => typeof error.code === 'string',
  )
})

test('close() on a reader stops a consumer waiting in for await', async () => {
  const channel = await worker.createChannel()
  const consumer = (async () => {
    for await (const chunk of channel.reader.stream) void chunk
  })().then(
    () => null,
    (error) => error,
  )
  await new Promise((r) => setTimeout(r, 50))
  await channel.reader.close()
  // Closed by its owner: the Readable is destroyed, so the loop ends with a premature close.
  const error = await consumer
  assert.ok(error, 'the loop ended as if the stream were complete')
  assert.ok(['ERR_STREAM_PREMATURE_CLOSE', 'reader_closed'].includes(error.code), `code ${error.code}`)
  assert.equal(channel.reader.stream.destroyed, true)
  await assert.rejects(channel.reader.read(), (error) => error.code === 'reader_closed')
})

// The writer runs in a child process so that its memory can be measured on its own.
const WRITER = `
const { registerWorker } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
const [url, totalText, pauseText] = process.argv.slice(1)
const total = Number(totalText)
const CHUNK = 64 * 1024
;(async () => {
  const iii = registerWorker(url)
  const channel = await iii.createChannel()
  const stream = channel.writer.stream
  const result = iii.trigger({ function_id: 'slow::sink', payload: { reader: channel.readerRef }, timeoutMs: 300000 })
  let produced = 0, falses = 0, drains = 0, producedDuringPause = -1
  let baseline = null, peakRss = 0, peakExternal = 0, half = null, peakRssLate = 0
  const start = Date.now()
  const sample = () => {
    const usage = process.memoryUsage()
    if (baseline) {
      peakRss = Math.max(peakRss, usage.rss)
      peakExternal = Math.max(peakExternal, usage.external + usage.heapUsed)
    }
    if (half) peakRssLate = Math.max(peakRssLate, usage.rss)
    if (producedDuringPause < 0 && Date.now() - start >= Number(pauseText) * 0.8) producedDuringPause = produced
  }
  const sampler = setInterval(sample, 20)
  stream.on('drain', () => drains++)
  while (produced < total) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, total - produced)).fill(produced & 0xff)
    produced += chunk.length
    if (!baseline && produced >= 4 * 1024 * 1024) {
      global.gc && global.gc()
      const usage = process.memoryUsage()
      baseline = { rss: usage.rss, external: usage.external + usage.heapUsed }
    }
    if (!half && produced >= total / 2) half = { rss: process.memoryUsage().rss }
    if (!stream.write(chunk)) {
      falses++
      await new Promise((resolve) => stream.once('drain', resolve))
    }
  }
  await new Promise((resolve, reject) => stream.end((error) => (error ? reject(error) : resolve())))
  const elapsed = Date.now() - start
  sample()
  clearInterval(sampler)
  const answer = await result
  console.log(JSON.stringify({ answer, produced, falses, drains, producedDuringPause, baseline, peakRss, peakExternal, half, peakRssLate, elapsed }))
  await iii.shutdown()
})().catch((error) => { console.error(error); process.exit(1) })
`

test('a slow reader paces the Writable (write() false, then drain) and bounds the writer\'s memory', async () => {
  const total = 200 * MiB
  const pauseMs = 1000
  let readBytes = 0
  worker.registerFunction('slow::sink', async (input) => {
    await new Promise((r) => setTimeout(r, pauseMs)) // nothing read for a while
    let sinceNap = 0
    let first = null
    for await (const chunk of input.reader.stream) {
      if (first === null) first = chunk[0]
      readBytes += chunk.length
      sinceNap += chunk.length
      if (sinceNap >= 2 * MiB) {
        sinceNap = 0
        await new Promise((r) => setTimeout(r, 5))
      }
    }
    return { bytes: readBytes, first }
  })

  const child = spawn(process.execPath, ['--expose-gc', '-e', WRITER, engine.url, String(total), String(pauseMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  assert.equal(code, 0, `the writer failed: ${out}`)
  const stats = JSON.parse(out.trim().split('\n').pop())

  assert.deepEqual(stats.answer, { bytes: total, first: 0 })
  assert.equal(stats.produced, total)
  // The Writable said "wait", and every wait ended with a drain.
  assert.ok(stats.falses > 0, 'write() never returned false')
  assert.ok(stats.drains >= stats.falses, `${stats.drains} drains for ${stats.falses} false writes`)
  // While nothing was read, the writer could get only a bounded amount ahead.
  assert.ok(stats.producedDuringPause >= 0, 'the writer finished before the reader started')
  assert.ok(
    stats.producedDuringPause < 32 * MiB,
    `${(stats.producedDuringPause / MiB).toFixed(1)} MiB produced while the reader read nothing`,
  )
  // Memory does not grow with the 200 MiB written.
  const rssGrowth = stats.peakRss - stats.baseline.rss
  const externalGrowth = stats.peakExternal - stats.baseline.external
  assert.ok(rssGrowth < 64 * MiB, `the writer's RSS grew by ${(rssGrowth / MiB).toFixed(1)} MiB`)
  const lateGrowth = stats.peakRssLate - stats.half.rss
  assert.ok(lateGrowth < 16 * MiB, `the writer's RSS grew by ${(lateGrowth / MiB).toFixed(1)} MiB over the second 100 MiB`)
  assert.ok(externalGrowth < 48 * MiB, `the writer's heap + buffers grew by ${(externalGrowth / MiB).toFixed(1)} MiB`)
  console.log(
    `slow reader: ${stats.falses} false writes, ${stats.drains} drains, ` +
      `${(stats.producedDuringPause / MiB).toFixed(1)} MiB ahead during the pause, ` +
      `RSS +${(rssGrowth / MiB).toFixed(1)} MiB (+${(lateGrowth / MiB).toFixed(1)} MiB in the second half), heap+external +${(externalGrowth / MiB).toFixed(1)} MiB, ${stats.elapsed} ms`,
  )
})

test('an error nobody listens for is a warning, not a crash: refused sockets, a reader that left', async () => {
  const script = `
    const { registerWorker } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    const iii = registerWorker(process.argv[1])
    // Answers with a ref to the channel end it is told of, but with a wrong key.
    const forge = iii.registerFunction('forge-' + process.pid, ({ channel_id, direction }) => ({
      channel_id,
      direction,
      access_key: 'not-the-key',
    }))
    ;(async () => {
      // Refs with a wrong key, made live ends by the trigger: the engine refuses both sockets.
      const channel = await iii.createChannel()
      const forged = ({ channel_id, direction }) =>
        iii.trigger({ function_id: forge.id, payload: { channel_id, direction } })
      const writer = await forged(channel.writerRef)
      writer.stream.write(Buffer.from('lost'))
      const reader = await forged(channel.readerRef)
      reader.stream.on('data', () => {})
      // A reader that leaves while the writer keeps writing: more than the channel's buffer
      // (4 MiB) and the writer's window (1 MiB) together, so that a write is still waiting
      // when the engine tells the writer, even if the writer connected a moment before the
      // engine had the reader's close.
      const other = await iii.createChannel()
      await other.reader.close()
      for (let i = 0; i < 100; i++) other.writer.stream.write(Buffer.alloc(65536))
      await new Promise((r) => setTimeout(r, 1500))
      console.log('still alive')
      await iii.shutdown()
    })()
  `
  const child = spawn(process.execPath, ['-e', script, engine.url], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  assert.equal(code, 0, err)
  assert.match(out, /still alive/)
  assert.match(err, /iii-sdk: a channel writer failed \(\w+\)/)
  assert.match(err, /iii-sdk: a channel reader failed \(\w+\)/)
  assert.match(err, /a channel writer failed \(reader_closed\)/)
})

test('onMessage sees every message sent before a chunk (or the end) before that chunk is read', async () => {
  for (let round = 0; round < 20; round++) {
    const channel = await worker.createChannel()
    const messages = []
    channel.reader.onMessage((text) => messages.push(Number(text)))
    const writing = (async () => {
      for (let i = 0; i < 40; i++) {
        await channel.writer.write(Buffer.alloc(1024 + i, i))
        await channel.writer.sendMessage(String(i))
      }
      await channel.writer.close()
    })()
    // Chunk i ends at ends[i]; message i went out after it, before chunk i + 1.
    const ends = []
    for (let i = 0, end = 0; i < 40; i++) ends.push((end += 1024 + i))
    let received = 0
    for await (const chunk of channel.reader.stream) {
      received += chunk.length
      const due = ends.filter((end) => end < received).length
      assert.ok(messages.length >= due, `round ${round}: ${received} bytes read with ${messages.length} of ${due} messages seen`)
    }
    assert.equal(received, ends[39])
    await writing
    assert.deepEqual(messages, Array.from({ length: 40 }, (_, i) => i), `round ${round}: every message before the end`)
  }
})

test('close() after stream.end() resolves, awaited or not (no ERR_STREAM_ALREADY_FINISHED)', async () => {
  const unhandled = []
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const channel = await worker.createChannel()
    const reading = channel.reader.readAll()
    channel.writer.stream.end(Buffer.from('hello'))
    await once(channel.writer.stream, 'finish')
    channel.writer.close() // not awaited, as a program written for a synchronous close() does
    await channel.writer.close()
    assert.equal((await reading).toString(), 'hello')
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

test('text messages that outrun a busy JavaScript thread are bounded, not queued without end', async () => {
  const channel = await worker.createChannel()
  let received = 0
  channel.reader.onMessage(() => received++)
  const SENT = 5000
  for (let i = 0; i < SENT; i++) channel.writer.sendMessage(`m${i}`)
  // Keep the JavaScript thread busy while the core receives them all.
  const until = Date.now() + 3000
  while (Date.now() < until) {
    /* busy */
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.ok(received >= 1024, `only ${received} messages arrived`)
  assert.ok(received < SENT, 'every message was held for the busy thread: nothing bounds them')
  await channel.writer.close()
})
