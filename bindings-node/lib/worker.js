'use strict'
// The worker: registerWorker(url) and the III class, over the native worker. Payloads cross
// the boundary as JSON text; the core finds the channel refs in handler input (and in results)
// and hands them over as live ends with their paths, which become ChannelReader /
// ChannelWriter objects here; live ends are sent as their refs (toJSON).
const { AsyncLocalStorage } = require('node:async_hooks')
const native = require('./native')
const { withEnds } = require('./channels')
const { HTTP_FUNCTION } = require('./http')
const { asInvocationError } = require('./errors')

/** Native argument errors (thrown synchronously) as the TypeErrors JavaScript callers expect. */
function asTypeError(error) {
  if (error && error.code === 'InvalidArg') throw new TypeError(`iii-sdk: ${error.message}`)
  throw error
}

const TriggerAction = Object.freeze({
  Void: () => ({ type: 'void' }),
  Enqueue: (options = {}) => ({ type: 'enqueue', queue: options.queue }),
})

/** The published client's registerFunction options the core takes, as one JSON value. */
function functionOptions(spec) {
  return {
    metadata: spec.metadata ?? null,
    request_format: spec.request_format ?? null,
    response_format: spec.response_format ?? null,
  }
}

/** The call each running handler serves (see currentInvocation). */
const serving = new AsyncLocalStorage()

/**
 * The call the running handler serves: `{ function_id, invocation_id?, traceparent?,
 * tracestate?, baggage? }`, or `undefined` outside a handler. Calls the handler makes carry
 * its trace context on.
 */
function currentInvocation() {
  return serving.getStore()
}

/** The fields of the W3C trace context a call carries. */
const TRACE_FIELDS = ['traceparent', 'tracestate', 'baggage']

/** `request` with the served call's trace context, unless it names its own. */
function withTrace(request) {
  const call = serving.getStore()
  if (!call || !request || typeof request !== 'object') return request
  if (TRACE_FIELDS.some((field) => request[field] != null)) return request
  const trace = {}
  for (const field of TRACE_FIELDS) if (call[field] != null) trace[field] = call[field]
  return Object.keys(trace).length === 0 ? request : { ...request, ...trace }
}

class Channel {
  /** `created` is the native `{ json, ends }` of `{ writer, reader }`: both refs, made live. */
  constructor(created) {
    const { writer, reader } = withEnds(created)
    Object.assign(this, { writer, reader, writerRef: writer.ref, readerRef: reader.ref })
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
    let pending
    try {
      pending = this._native.trigger(JSON.stringify(withTrace(request) ?? null))
    } catch (error) {
      asTypeError(error)
    }
    let answered
    try {
      answered = await pending
    } catch (error) {
      throw asInvocationError(error, request.function_id)
    }
    const result = withEnds(answered)
    return request.action != null && request.action.type === 'void' ? undefined : result
  }

  /**
   * Resolves once the worker is connected and everything it sent before (registrations
   * included) has reached the engine; rejects when the worker stopped for good.
   */
  async ready() {
    await this._native.ready()
  }

  /**
   * Registers `handler(input, metadata)` (sync or async; `metadata` is what the caller sent
   * beside the input, if anything) as function `id` (a string, or `{ id,
   * description }`). Returns `{ id, unregister() }`.
   */
  registerFunction(idOrOptions, handler, options) {
    const spec = typeof idOrOptions === 'string' ? { id: idOrOptions, ...(options || {}) } : idOrOptions
    if (!spec || typeof spec.id !== 'string') throw new TypeError('iii-sdk: registerFunction() needs an id')
    if (handler !== null && typeof handler === 'object' && typeof handler.url === 'string') {
      // An HttpInvocationConfig: the engine calls the function over HTTP.
      const ref = this._native.registerHttpFunction(
        spec.id,
        JSON.stringify(handler),
        spec.description ?? undefined,
        JSON.stringify(functionOptions(spec)),
      )
      return { id: ref.id, unregister: () => ref.unregister() }
    }
    if (typeof handler !== 'function') {
      throw new TypeError('iii-sdk: registerFunction() needs a handler function or an HttpInvocationConfig')
    }
    const isHttp = handler[HTTP_FUNCTION] === true
    const ref = this._native.registerFunction(
      spec.id,
      (invocation, done) => {
        let input
        let metadata
        const call = { function_id: spec.id }
        try {
          input = isHttp ? invocation : withEnds(invocation)
          if (!isHttp && invocation.metadata !== undefined) metadata = JSON.parse(invocation.metadata)
          // What currentInvocation() tells: the call's id and trace context (an http() function's
          // come with its request).
          const served = isHttp ? invocation.request : invocation
          if (served.call !== undefined) Object.assign(call, JSON.parse(served.call))
        } catch (error) {
          done.reject(null, `bad input: ${error.message}`, error.stack)
          return
        }
        serving.run(call, () => new Promise((resolve) => resolve(handler(input, metadata)))).then(
          (result) => {
            let json
            try {
              json = result === undefined ? undefined : JSON.stringify(result)
            } catch (error) {
              done.reject(null, `the result is not JSON: ${error.message}`, error.stack)
              return
            }
            done.resolve(json)
          },
          (error) => {
            // The message alone, as the published clients send it (the type is in the stack);
            // an error without one is named by its type.
            const text = error && error.message !== undefined ? String(error.message) : String(error)
            const message = text || (error instanceof Error && error.name) || text
            const code = error && typeof error.code === 'string' ? error.code : null
            done.reject(code, message, error && error.stack ? String(error.stack) : undefined)
          },
        )
      },
      spec.description ?? undefined,
      isHttp,
      JSON.stringify(functionOptions(spec)),
    )
    return { id: ref.id, unregister: () => ref.unregister() }
  }

  /**
   * Provides a trigger type (`{ id, description }`): the engine hands this worker every trigger
   * of the type, and `handler.registerTrigger(trigger)` / `unregisterTrigger(trigger)` (sync or
   * async; `trigger` is `{ id, function_id, config, metadata? }`) start and stop firing it.
   * Returns `{ id, registerTrigger(functionId, config, metadata?), registerFunction(functionId,
   * handler, config, metadata?), unregister() }`.
   */
  registerTriggerType(triggerType, handler) {
    const id = typeof triggerType === 'string' ? triggerType : triggerType?.id
    if (typeof id !== 'string') throw new TypeError('iii-sdk: registerTriggerType() needs { id, description }')
    if (!handler || typeof handler.registerTrigger !== 'function' || typeof handler.unregisterTrigger !== 'function') {
      throw new TypeError('iii-sdk: registerTriggerType() needs a handler with registerTrigger and unregisterTrigger')
    }
    const native = this._native.registerTriggerType(
      id,
      (invocation, done) => {
        let forwarded
        try {
          forwarded = withEnds(invocation)
        } catch (error) {
          done.reject(null, `bad input: ${error.message}`, error.stack)
          return
        }
        const step = forwarded.op === 'register' ? handler.registerTrigger : handler.unregisterTrigger
        new Promise((resolve) => resolve(step.call(handler, forwarded.trigger))).then(
          () => done.resolve(undefined),
          (error) => done.reject(null, error && error.message !== undefined ? String(error.message) : String(error)),
        )
      },
      triggerType?.description ?? undefined,
    )
    this._triggerTypes = this._triggerTypes ?? new Map()
    this._triggerTypes.set(id, native)
    return {
      id,
      registerTrigger: (functionId, config, metadata) =>
        this.registerTrigger({ type: id, function_id: functionId, config, metadata }),
      registerFunction: (functionId, fn, config, metadata) => {
        const registered = this.registerFunction(functionId, fn)
        this.registerTrigger({ type: id, function_id: functionId, config, metadata })
        return registered
      },
      unregister: () => this.unregisterTriggerType({ id }),
    }
  }

  /** Stops providing a trigger type registered with `registerTriggerType`. */
  unregisterTriggerType(triggerType) {
    const id = typeof triggerType === 'string' ? triggerType : triggerType?.id
    const native = this._triggerTypes?.get(id)
    if (!native) return
    this._triggerTypes.delete(id)
    native.unregister()
  }

  /** Binds a trigger `{ type, function_id, config }`. Returns `{ id, unregister() }`. */
  registerTrigger(trigger) {
    let ref
    try {
      ref = this._native.registerTrigger(JSON.stringify({ ...trigger, config: trigger?.config ?? {} }))
    } catch (error) {
      asTypeError(error)
    }
    return { id: ref.id, unregister: () => ref.unregister() }
  }

  /** Stops the worker and releases its handlers, so the process can exit. */
  async shutdown() {
    this._native.shutdown()
  }
}

/** Starts a worker for the engine at `url` (connects in the background). */
function registerWorker(url, options = {}) {
  let worker
  try {
    worker = native.NativeWorker.connect(
      url,
      options.workerName ?? options.worker_name ?? undefined,
      options.invocationTimeoutMs ?? undefined,
      options.connectTimeoutMs ?? undefined,
      options.workerDescription ?? undefined,
      JSON.stringify({
        headers: options.headers ?? null,
        reconnectionConfig: options.reconnectionConfig ?? null,
        caFile: options.caFile ?? null,
      }),
    )
  } catch (error) {
    asTypeError(error)
  }
  return new III(worker)
}

/** `iii.createChannel()` as a function, as `iii-sdk/helpers` of the published client has it. */
function createChannel(iii, bufferSize) {
  return iii.createChannel(bufferSize)
}

module.exports = { III, Channel, TriggerAction, registerWorker, createChannel, currentInvocation }
