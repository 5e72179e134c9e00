'use strict'
// Names and behaviours of the published client (npm iii-sdk 0.22) that programs rely on: the
// InvocationError class and its fields, the iii-sdk/errors, /engine, /channel and /helpers
// subpaths (CommonJS and ES modules), and a duplicate function id refused.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { registerWorker, InvocationError } = require('..')
const { startEngine } = require('./engine')

let engine
let worker

before(async () => {
  engine = await startEngine()
  worker = registerWorker(engine.url, { workerName: 'compat-node', workerDescription: 'the compat tests' })
})

after(async () => {
  if (worker) await worker.shutdown()
  if (engine) await engine.stop()
})

test('a failed call rejects with an InvocationError carrying code, function_id and the stack', async () => {
  worker.registerFunction('compat::fails', () => {
    throw new RangeError('out of range')
  })
  const error = await worker.trigger({ function_id: 'compat::fails', payload: {} }).then(
    () => assert.fail('expected a failure'),
    (e) => e,
  )
  assert.ok(error instanceof InvocationError)
  assert.ok(error instanceof Error)
  assert.equal(error.name, 'InvocationError')
  assert.equal(error.code, 'invocation_failed')
  assert.equal(error.function_id, 'compat::fails')
  assert.equal(error.message, 'invocation_failed: out of range')
  assert.match(error.stacktrace, /RangeError: out of range/)
  const missing = await worker.trigger({ function_id: 'compat::nowhere', payload: {} }).catch((e) => e)
  assert.ok(missing instanceof InvocationError)
  assert.equal(missing.code, 'function_not_found')
  assert.equal(missing.function_id, 'compat::nowhere')
})

test('a duplicate function id throws, as the published client does', () => {
  worker.registerFunction('compat::once', () => 1)
  assert.throws(() => worker.registerFunction('compat::once', () => 2), /already registered/)
})

test('the published subpaths load in both module systems', async () => {
  const errors = require('iii-sdk/errors')
  const engineIds = require('iii-sdk/engine')
  const channel = require('iii-sdk/channel')
  const helpers = require('iii-sdk/helpers')
  assert.equal(errors.InvocationError, InvocationError)
  assert.ok(errors.isErrorBody({ code: 'x', message: 'y' }) && !errors.isErrorBody({ code: 1 }))
  assert.equal(engineIds.EngineFunctions.LIST_FUNCTIONS, 'engine::functions::list')
  assert.equal(engineIds.EngineTriggers.FUNCTIONS_AVAILABLE, 'engine::functions-available')
  assert.equal(typeof channel.ChannelReader, 'function')
  const esm = await import('iii-sdk/errors')
  assert.equal(esm.InvocationError, InvocationError)
  const esmEngine = await import('iii-sdk/engine')
  assert.equal(esmEngine.EngineFunctions.INFO_WORKERS, 'engine::workers::info')
  const esmIndex = await import('iii-sdk')
  assert.equal(esmIndex.InvocationError, InvocationError)
  const esmHelpers = await import('iii-sdk/helpers')
  assert.equal(typeof esmHelpers.extractChannelRefs, 'function')
  assert.equal(helpers.ChannelDirection.Read, 'read')
})

test('helpers find channel refs with the published paths; discovery answers through trigger', async () => {
  const { isChannelRef, extractChannelRefs, createChannel } = require('iii-sdk/helpers')
  const { EngineFunctions } = require('iii-sdk/engine')
  const channel = await createChannel(worker)
  assert.ok(isChannelRef(channel.writerRef))
  assert.ok(!isChannelRef({ channel_id: 'x', access_key: 'k', direction: 'sideways' }))
  const found = extractChannelRefs({ items: [{ writer: channel.writerRef }], reader: channel.readerRef })
  assert.deepEqual(
    found.map(([path]) => path),
    ['items[0].writer', 'reader'],
  )
  assert.deepEqual(found[0][1], channel.writerRef)
  worker.registerFunction('compat::listed', () => null, {
    description: 'listed here',
    metadata: { team: 'a' },
    request_format: { type: 'object' },
  })
  await worker.ready()
  const listed = await worker.trigger({ function_id: EngineFunctions.LIST_FUNCTIONS, payload: { prefix: 'compat::listed' } })
  assert.deepEqual(
    listed.functions.map((f) => [f.function_id, f.description]),
    [['compat::listed', 'listed here']],
  )
  const info = await worker.trigger({ function_id: EngineFunctions.INFO_FUNCTIONS, payload: { function_id: 'compat::listed' } })
  assert.deepEqual(info.metadata, { team: 'a' })
  assert.deepEqual(info.request_schema, { type: 'object' })
  await channel.writer.close()
})

test('the worker describes itself to the engine', async () => {
  await worker.ready()
  const listed = await worker.trigger({ function_id: 'engine::workers::list', payload: { search: 'compat-node' } })
  assert.deepEqual(
    listed.workers.map((w) => [w.name, w.description, w.runtime]),
    [['compat-node', 'the compat tests', 'node']],
  )
})

test('registerTrigger sends its metadata', async () => {
  worker.registerFunction('compat::routed', () => ({ status_code: 200, body: 'ok' }))
  const trigger = worker.registerTrigger({
    type: 'http',
    function_id: 'compat::routed',
    config: { api_path: '/compat-routed' },
    metadata: { k: 1 },
  })
  await worker.ready()
  const info = await worker.trigger({ function_id: 'engine::registered-triggers::info', payload: { id: trigger.id } })
  assert.deepEqual(info.metadata, { k: 1 })
  trigger.unregister()
})

test('registerTriggerType: the triggers of a provided type reach its handler, and go', async () => {
  const seen = []
  const ticker = worker.registerTriggerType(
    { id: 'compat-ticker', description: 'ticks' },
    {
      registerTrigger: async (trigger) => seen.push(['register', trigger]),
      unregisterTrigger: (trigger) => seen.push(['unregister', trigger.id]),
    },
  )
  await worker.ready()
  const user = registerWorker(engine.url)
  try {
    user.registerFunction('compat::tick', () => null)
    const trigger = user.registerTrigger({
      type: 'compat-ticker',
      function_id: 'compat::tick',
      config: { every: 5 },
      metadata: { k: 1 },
    })
    const deadline = Date.now() + 10_000
    while (seen.length < 1) {
      assert.ok(Date.now() < deadline, 'the provider never got the trigger')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.deepEqual(seen[0], [
      'register',
      { id: trigger.id, function_id: 'compat::tick', config: { every: 5 }, metadata: { k: 1 } },
    ])
    trigger.unregister()
    while (seen.length < 2) {
      assert.ok(Date.now() < deadline, 'the provider never got the withdrawal')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.deepEqual(seen[1], ['unregister', trigger.id])
    const info = await user.trigger({ function_id: 'engine::triggers::info', payload: { id: 'compat-ticker' } })
    assert.equal(info.description, 'ticks')
  } finally {
    await user.shutdown()
    ticker.unregister()
  }
})

test('a call that times out rejects with an InvocationError with code TIMEOUT', async () => {
  worker.registerFunction('compat::slow', () => new Promise((resolve) => setTimeout(resolve, 2000)))
  const error = await worker.trigger({ function_id: 'compat::slow', payload: {}, timeoutMs: 200 }).catch((e) => e)
  assert.ok(error instanceof InvocationError, String(error))
  assert.equal(error.code, 'TIMEOUT')
  assert.equal(error.function_id, 'compat::slow')
})
