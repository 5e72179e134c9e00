'use strict'
// An engine that stops (SIGTERM drains, a second signal stops at once) cuts a stream in flight
// and a call in flight with its own error: GoingAwayError, code `going_away`, never a clean
// end of the stream.

const { test } = require('node:test')
const assert = require('node:assert/strict')

const { registerWorker } = require('..')
const { startEngine } = require('./engine')

test('a stopping engine is going away for a reader and a call in flight, never a clean end', async () => {
  const engine = await startEngine({ args: ['--shutdown-grace-secs', '60'] })
  const worker = registerWorker(engine.url)
  try {
    worker.registerFunction('stop::never', () => new Promise(() => {}))
    const channel = await worker.createChannel()
    await channel.writer.write(Buffer.alloc(100_000, 120))
    let read = (await channel.reader.read()).length
    const call = worker.trigger({ function_id: 'stop::never', payload: {} })
    call.catch(() => {})
    await new Promise((r) => setTimeout(r, 300))
    engine.signal('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    engine.signal('SIGINT')
    const error = await (async () => {
      try {
        for (;;) {
          const chunk = await channel.reader.read()
          if (chunk === null) return null
          read += chunk.length
        }
      } catch (error) {
        return error
      }
    })()
    assert.ok(error, 'the stream ended as if it were complete')
    assert.equal(read, 100_000, 'what was buffered before the stop arrives first')
    assert.equal(error.name, 'GoingAwayError')
    assert.equal(error.code, 'going_away')
    await assert.rejects(call, (failure) => {
      assert.equal(failure.code, 'going_away')
      return true
    })
    assert.equal(await engine.exited, 0)
  } finally {
    await worker.shutdown()
    await engine.stop()
  }
})
