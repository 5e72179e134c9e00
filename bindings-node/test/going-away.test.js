'use strict'
// An engine that stops (SIGTERM drains, a second signal stops at once) cuts a stream in flight,
// a call in flight and an HTTP download with its own error: GoingAwayError, code `going_away`,
// never a clean end of the stream (nor of the download, for its HTTP client).

const { test } = require('node:test')
const assert = require('node:assert/strict')

const nodeHttp = require('node:http')

const { registerWorker, http } = require('..')
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

test('a download goes on while the engine drains, then the client sees it cut and the handler going away', async () => {
  const engine = await startEngine({ args: ['--shutdown-grace-secs', '60'] })
  const worker = registerWorker(engine.url)
  try {
    let handlerFailed
    const failure = new Promise((resolve) => {
      handlerFailed = resolve
    })
    worker.registerFunction(
      'stop::endless',
      http(async (_req, res) => {
        await res.status(200)
        await res.writer.write(Buffer.alloc(100_000, 120))
        try {
          for (;;) {
            await new Promise((r) => setTimeout(r, 10))
            await res.writer.write(Buffer.alloc(1000, 121))
          }
        } catch (error) {
          handlerFailed(error)
        }
      }),
    )
    worker.registerTrigger({
      type: 'http',
      function_id: 'stop::endless',
      config: { api_path: '/endless', http_method: 'GET' },
    })
    await worker.ready()
    const response = await new Promise((resolve, reject) => {
      nodeHttp.get(`${engine.httpUrl}/endless`, resolve).once('error', reject)
    })
    assert.equal(response.statusCode, 200)
    let received = 0
    let afterStop = 0
    let stopping = false
    const ended = new Promise((resolve) => {
      response.on('data', (chunk) => {
        received += chunk.length
        if (stopping) afterStop += chunk.length
        if (received >= 100_000 && !stopping) {
          stopping = true
          engine.signal('SIGTERM')
          setTimeout(() => engine.signal('SIGINT'), 500)
        }
      })
      response.once('end', () => resolve('a clean end'))
      response.once('error', (error) => resolve(error))
      response.once('aborted', () => resolve(new Error('aborted')))
    })
    const end = await ended
    assert.ok(end instanceof Error, 'the cut download ended as if it were complete')
    assert.ok(afterStop >= 10_000, `the download went on while the engine drained (${afterStop} bytes)`)
    const error = await failure
    assert.equal(error.name, 'GoingAwayError')
    assert.equal(error.code, 'going_away')
    assert.equal(await engine.exited, 0)
  } finally {
    await worker.shutdown()
    await engine.stop()
  }
})
