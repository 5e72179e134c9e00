'use strict'
// `http(async (req, res) => …)`: a function for an `http` trigger (PROTOCOL.md §6).
//
// The engine invokes the function with the request (method, path, params, headers, parsed
// JSON body) plus two channel ends: `request_body` (the raw body, read as it arrives) and
// `response` (written by the handler). `res.status()` / `res.headers()` send control
// messages on the response channel, in order with the body's writes, so they take effect as
// long as they come before the first body byte. When the handler resolves, the response is
// ended if the handler left it open; when it throws, the response is aborted (the client
// sees a cut-off body, or a 500 when nothing was sent yet) and the error is rethrown.
const { finished } = require('node:stream/promises')
const { ChannelReader, ChannelWriter } = require('./channels')

class HttpRequest {
  constructor(data) {
    /** The HTTP method, e.g. `GET`. */
    this.method = data.method || 'GET'
    /** The registered route pattern, e.g. `/files/:filename`. */
    this.path = data.path || ''
    /** The path as requested, when the engine sends it. */
    if (data.raw_path !== undefined) this.raw_path = data.raw_path
    /** `:name` segments of the route. */
    this.path_params = { ...(data.path_params || {}) }
    /** Query parameters (a repeated key gives an array). */
    this.query_params = { ...(data.query_params || {}) }
    /** Headers with lower-case names (a repeated header gives an array). */
    this.headers = { ...(data.headers || {}) }
    /** The parsed JSON body (for `application/json` requests), else null. */
    this.body = data.body === undefined ? null : data.body
    /** The raw request body as it arrives (`.stream` is a Readable). */
    this.request_body = data.request_body
    /** The trigger that matched (`{ type, path, method }`). */
    if (data.trigger !== undefined) this.trigger = data.trigger
  }
}

class HttpResponse {
  constructor(writer) {
    /** The response channel's writer. */
    this.writer = writer
  }

  /** The response body as a Writable: each chunk reaches the client as it is written. */
  get stream() {
    const stream = this.writer.stream
    stream._iiiClientMayLeave = true
    return stream
  }

  /** Sets the status code (effective before the first body byte). */
  status(statusCode) {
    return this.writer.sendMessage(JSON.stringify({ type: 'set_status', status_code: statusCode }))
  }

  /** Sets response headers `{ name: value | [values] }` (effective before the first body byte). */
  headers(headers) {
    return this.writer.sendMessage(JSON.stringify({ type: 'set_headers', headers: { ...headers } }))
  }

  /** Ends the response; resolves once the engine holds the whole body. */
  close() {
    return endResponse(this.writer)
  }
}

/** Ends `writer` (its Writable if one was made) unless already ended; waits for the end. */
async function endResponse(writer) {
  const stream = writer._stream
  if (!stream) return writer._native.close()
  if (stream.destroyed) {
    if (stream.errored) throw stream.errored
    return undefined
  }
  if (!stream.writableEnded) stream.end()
  await finished(stream)
  return undefined
}

function errorText(error) {
  if (error && error.message !== undefined) {
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : String(error.message)
  }
  return String(error)
}

/** Makes `handler(req, res)` (sync or async) a function for an `http` trigger. */
function http(handler) {
  if (typeof handler !== 'function') throw new TypeError('iii-sdk: http() needs a handler function')
  return async function httpFunction(data) {
    if (!data || !(data.response instanceof ChannelWriter)) {
      throw new TypeError('iii-sdk: an http() function must be bound to an http trigger (no response channel)')
    }
    if (!(data.request_body instanceof ChannelReader)) data = { ...data, request_body: null }
    const req = new HttpRequest(data)
    const res = new HttpResponse(data.response)
    let result
    try {
      result = await handler(req, res)
    } catch (error) {
      try {
        await res.writer.abort(errorText(error))
      } catch {
        // The client left or the response already ended: nothing left to cut off.
      }
      throw error
    }
    try {
      await endResponse(res.writer)
    } catch {
      // The client left (reader_closed) or the handler aborted the response itself.
    }
    return result
  }
}

module.exports = { http, HttpRequest, HttpResponse }
