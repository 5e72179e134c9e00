'use strict'
// A missing engine fails fast and says so: a refused or unreachable engine fails the first
// call within the connect timeout, with the URL and the cause in the message; a URL that can
// never work is refused by registerWorker itself; the worker keeps reconnecting, so a call
// made once the engine is up succeeds.
const { test } = require('node:test')
const assert = require('node:assert/strict')

const { registerWorker } = require('..')
const { startEngine, freePort } = require('./engine')

const CONNECT_TIMEOUT_MS = 800

/** How long `promise` took to reject, and its error. */
async function rejection(promise) {
  const started = Date.now()
  const error = await promise.then(
    () => assert.fail('expected a rejection'),
    (error) => error,
  )
  return { error, waited: Date.now() - started }
}

test('a malformed URL is refused by registerWorker', () => {
  for (const url of ['localhost:49134', 'http://127.0.0.1:49134', 'ws://']) {
    assert.throws(() => registerWorker(url), (error) => error instanceof TypeError && error.message.includes(url))
  }
})

test('a refused engine fails trigger and createChannel within the connect timeout', async () => {
  const url = `ws://127.0.0.1:${await freePort()}`
  const iii = registerWorker(url, { connectTimeoutMs: CONNECT_TIMEOUT_MS })
  try {
    for (const call of [() => iii.trigger({ function_id: 'x::y', payload: {} }), () => iii.createChannel()]) {
      const { error, waited } = await rejection(call())
      assert.ok(waited < CONNECT_TIMEOUT_MS + 2000, `waited ${waited} ms`)
      assert.equal(error.name, 'ConnectionError')
      assert.equal(error.code, 'connection')
      assert.match(error.message, new RegExp(url.replace(/[.:/]/g, '\\$&')))
      assert.match(error.message, /refused/i)
    }
  } finally {
    await iii.shutdown()
  }
})

test('an unreachable engine fails a call within the connect timeout', async () => {
  // A documentation address (TEST-NET-1, RFC 5737): nothing answers, so the attempt hangs.
  const url = 'ws://192.0.2.1:49134'
  const iii = registerWorker(url, { connectTimeoutMs: CONNECT_TIMEOUT_MS })
  try {
    const { error, waited } = await rejection(iii.trigger({ function_id: 'x::y', payload: {} }))
    assert.ok(waited < CONNECT_TIMEOUT_MS + 2000, `waited ${waited} ms`)
    assert.equal(error.name, 'ConnectionError')
    assert.ok(error.message.includes(url), error.message)
  } finally {
    await iii.shutdown()
  }
})

test('the worker keeps reconnecting and serves once the engine is up', async () => {
  const port = await freePort()
  const iii = registerWorker(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 500 })
  let engine
  try {
    iii.registerFunction('connect::echo', (input) => input)
    await assert.rejects(iii.trigger({ function_id: 'connect::echo', payload: { n: 1 } }), { name: 'ConnectionError' })
    engine = await startEngine({ port })
    const deadline = Date.now() + 20_000
    let echoed
    for (;;) {
      try {
        echoed = await iii.trigger({ function_id: 'connect::echo', payload: { n: 1 } })
        break
      } catch (error) {
        assert.equal(error.name, 'ConnectionError')
        assert.ok(Date.now() < deadline, 'the worker never reconnected')
      }
    }
    assert.equal(echoed.n, 1)
  } finally {
    await iii.shutdown()
    if (engine) await engine.stop()
  }
})

test('a write stalled without a reader warns on stderr, naming the channel', async () => {
  const engine = await startEngine()
  const script = `
    const { registerWorker } = require(${JSON.stringify(require('node:path').resolve(__dirname, '..'))})
    const iii = registerWorker(process.argv[1])
    ;(async () => {
      const channel = await iii.createChannel()
      console.log(channel.writerRef.channel_id)
      // More than the buffer (64 frames of 64 KiB) and the sockets hold, before any reader.
      await channel.writer.write(Buffer.alloc(64 * 1024 * 1024))
    })()
  `
  const { spawn } = require('node:child_process')
  const child = spawn(process.execPath, ['-e', script, engine.url], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, III_LOG: 'warn' },
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  try {
    const deadline = Date.now() + 15_000
    while (!err.includes('waited 5 s for its reader')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `no warning; stderr:\n${err}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    child.kill('SIGKILL')
    await engine.stop()
  }
  const channelId = out.trim()
  assert.ok(channelId.length > 0, 'no channel id printed')
  const warning = err.split('\n').filter((line) => line.includes('waited 5 s'))
  assert.equal(warning.length, 1, err)
  assert.match(warning[0], / WARN /)
  assert.ok(warning[0].includes(channelId), warning[0])
  assert.ok(!warning[0].includes('\x1b['), warning[0])
})
