'use strict'
// The worker: registerWorker(url) and the III class, over the native worker. Payloads cross
// the boundary as JSON text; channel refs in handler input (and in results) become live
// ChannelReader / ChannelWriter objects, and live ends are sent as their refs.
const native = require('./native')
const { ChannelReader, ChannelWriter } = require('./channels')

const MAX_DEPTH = 256

function isChannelRef(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.channel_id === 'string' &&
    typeof value.access_key === 'string' &&
    (value.direction === 'read' || value.direction === 'write')
  )
}

/** `value` with every channel ref turned into a live end on `address`. */
function materialize(value, address, depth = 0) {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value
  if (isChannelRef(value)) {
    const json = JSON.stringify({
      channel_id: value.channel_id,
      access_key: value.access_key,
      direction: value.direction,
    })
    return value.direction === 'read'
      ? new ChannelReader(native.NativeReader.fromRef(address, json))
      : new ChannelWriter(native.NativeWriter.fromRef(address, json))
  }
  if (Array.isArray(value)) return value.map((item) => materialize(item, address, depth + 1))
  const out = {}
  for (const key of Object.keys(value)) out[key] = materialize(value[key], address, depth + 1)
  return out
}

const TriggerAction = Object.freeze({
  Void: () => ({ type: 'void' }),
  Enqueue: (options = {}) => ({ type: 'enqueue', queue: options.queue }),
})

class Channel {
  constructor(parts) {
    this.writer = new ChannelWriter(parts.writer)
    this.reader = new ChannelReader(parts.reader)
    this.writerRef = JSON.parse(parts.writerRef)
    this.readerRef = JSON.parse(parts.readerRef)
  }
}

class III {
  constructor(nativeWorker) {
    this._native = nativeWorker
  }

  /** The engine URL. */
  get address() {
    return this._native.address
  }

  /** A new channel `{ writer, reader, writerRef, readerRef }`. */
  async createChannel(bufferSize) {
    return new Channel(await this._native.createChannel(bufferSize ?? undefined))
  }

  /** Calls a function through the engine; resolves with its result. */
  async trigger(request) {
    if (!request || typeof request.function_id !== 'string') {
      throw new TypeError('iii-sdk: trigger() needs { function_id, payload }')
    }
    const action = request.action ?? undefined
    if (action !== undefined && (typeof action !== 'object' || typeof action.type !== 'string')) {
      throw new TypeError('iii-sdk: trigger() action must be TriggerAction.Void() or TriggerAction.Enqueue({ queue })')
    }
    const payload = JSON.stringify(request.payload === undefined ? null : request.payload)
    const timeoutMs = request.timeoutMs ?? request.timeout_ms
    const result = await this._native.trigger(
      request.function_id,
      payload,
      action === undefined ? undefined : JSON.stringify(action),
      timeoutMs ?? undefined,
    )
    if (action !== undefined && action.type === 'void') return undefined
    return materialize(JSON.parse(result), this.address)
  }

  /**
   * Resolves once the worker is connected and everything it sent before (registrations
   * included) has reached the engine; rejects when the worker stopped for good.
   */
  async ready() {
    await this._native.ready()
  }

  /**
   * Registers `handler(input)` (sync or async) as function `id` (a string, or `{ id,
   * description }`). Returns `{ id, unregister() }`.
   */
  registerFunction(idOrOptions, handler, options) {
    const spec = typeof idOrOptions === 'string' ? { id: idOrOptions, ...(options || {}) } : idOrOptions
    if (!spec || typeof spec.id !== 'string') throw new TypeError('iii-sdk: registerFunction() needs an id')
    if (typeof handler !== 'function') throw new TypeError('iii-sdk: registerFunction() needs a handler function')
    const address = this.address
    const ref = this._native.registerFunction(
      spec.id,
      (inputJson, done) => {
        let input
        try {
          input = materialize(JSON.parse(inputJson), address)
        } catch (error) {
          done.reject('invocation_failed', `bad input: ${error.message}`, error.stack)
          return
        }
        new Promise((resolve) => resolve(handler(input))).then(
          (result) => {
            let json
            try {
              json = result === undefined ? undefined : JSON.stringify(result)
            } catch (error) {
              done.reject('invocation_failed', `the result is not JSON: ${error.message}`, error.stack)
              return
            }
            done.resolve(json)
          },
          (error) => {
            const message = error && error.message !== undefined ? String(error.message) : String(error)
            const code = error && typeof error.code === 'string' ? error.code : 'invocation_failed'
            done.reject(code, message, error && error.stack ? String(error.stack) : undefined)
          },
        )
      },
      spec.description ?? undefined,
    )
    return { id: ref.id, unregister: () => ref.unregister() }
  }

  /** Binds a trigger `{ type, function_id, config }`. Returns `{ id, unregister() }`. */
  registerTrigger(trigger) {
    if (!trigger || typeof trigger.type !== 'string' || typeof trigger.function_id !== 'string') {
      throw new TypeError('iii-sdk: registerTrigger() needs { type, function_id, config }')
    }
    const ref = this._native.registerTrigger(trigger.type, trigger.function_id, JSON.stringify(trigger.config ?? {}))
    return { id: ref.id, unregister: () => ref.unregister() }
  }

  /** Stops the worker and releases its handlers, so the process can exit. */
  async shutdown() {
    this._native.shutdown()
  }
}

/** Starts a worker for the engine at `url` (connects in the background). */
function registerWorker(url, options = {}) {
  return new III(
    native.NativeWorker.connect(
      url,
      options.workerName ?? options.worker_name ?? undefined,
      options.invocationTimeoutMs ?? undefined,
    ),
  )
}

/** `iii.createChannel()` as a function, as `iii-sdk/helpers` of the published client has it. */
function createChannel(iii, bufferSize) {
  return iii.createChannel(bufferSize)
}

module.exports = { III, Channel, TriggerAction, registerWorker, createChannel, materialize }
