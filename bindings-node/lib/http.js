'use strict'
// `http(async (req, res) => …)`: a function for an `http` trigger (docs/PROTOCOL.md §6).
//
// The core does the work (iii_sdk::http): it parses the request, opens the body's reader and
// the response's writer, sends `res.status()` / `res.headers()` as control messages in order
// with the body's writes, and ends the response after the handler — closed when it resolves
// (with nothing or undefined), aborted when it throws (the client sees a cut-off body, or a
// 500 when nothing was sent yet). This layer gives those objects their Node names and
// streams, and flushes a Writable the handler used before the core ends the response.
const { finished } = require('node:stream/promises')
const { ChannelReader, ChannelWriter, withEnds } = require('./channels')

/** Marks a function made by `http()`: registerFunction hands it the core's request and response. */
const HTTP_FUNCTION = Symbol.for('iii-sdk.http')

class HttpRequest {
  /** The request as the core parsed it (method, path, raw_path, path_params, query_params,
   *  headers, body, trigger) and `request_body`, its body as it arrives. */
  constructor(fields, requestBody) {
    Object.assign(this, fields)
    if (this.body === undefined) this.body = null
    /** The raw request body as it arrives (`.stream` is a Readable). */
    this.request_body = requestBody
  }
}

class HttpResponse {
  constructor(native) {
    this._native = native
    /** The response channel's writer. */
    this.writer = new ChannelWriter(native.writer())
  }

  /** The response body as a Writable: each chunk reaches the client as it is written. */
  get stream() {
    const stream = this.writer.stream
    stream._iiiClientMayLeave = true
    return stream
  }

  /** Sets the status code (effective before the first body byte). */
  status(statusCode) {
    return this._native.status(JSON.stringify(statusCode ?? null))
  }

  /** Sets response headers `{ name: value | [values] }` (effective before the first body byte). */
  headers(headers) {
    return this._native.headers(JSON.stringify(headers ?? {}))
  }

  /** Ends the response; resolves once the engine holds the whole body. */
  close() {
    return flush(this.writer).then(() => this.writer._native.close())
  }

  /**
   * Sends the file `name` from `directory` as the whole response and ends it: 200 with its
   * bytes, content type and length; 400 when `name` is not one plain file name (`.`, `..`, a
   * slash or backslash); 404 when there is no such file inside `directory` (a symbolic link
   * leading out of it counts as none). No server path reaches the client.
   */
  sendFile(directory, name) {
    // Whatever a Writable in use still holds goes first (an empty write calls back once
    // everything written before it was handed over); the stream itself stays open.
    const stream = this.writer._stream
    const handedOver =
      stream && !stream.destroyed && !stream.writableEnded
        ? new Promise((resolve, reject) => stream.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())))
        : Promise.resolve()
    return handedOver.then(() => this._native.sendFile(String(directory), String(name)))
  }
}

/** Ends the Writable the handler wrote through, if any, and waits until it handed everything over. */
async function flush(writer) {
  const stream = writer._stream
  if (!stream || stream.destroyed) return
  if (!stream.writableEnded) stream.end()
  await finished(stream)
}

/** Makes `handler(req, res)` (sync or async) a function for an `http` trigger. */
function http(handler) {
  if (typeof handler !== 'function') throw new TypeError('iii-sdk: http() needs a handler function')
  const httpFunction = async function httpFunction(invocation) {
    if (!invocation || invocation.http !== true) {
      throw new TypeError('iii-sdk: an http() function must be bound to an http trigger (no response channel)')
    }
    const req = new HttpRequest(withEnds(invocation.request), new ChannelReader(invocation.body))
    const res = new HttpResponse(invocation.response)
    let result
    try {
      result = await handler(req, res)
    } catch (error) {
      // A Writable in use stops taking writes and aborts the response with the error's
      // message; otherwise the core aborts it (if anything was sent) with the error.
      const stream = res.writer._stream
      if (stream && !stream.destroyed) stream.destroy(error instanceof Error ? error : new Error(String(error)))
      throw error
    }
    try {
      await flush(res.writer)
    } catch {
      // The client left (reader_closed) or the handler aborted the response itself.
    }
    return result
  }
  httpFunction[HTTP_FUNCTION] = true
  return httpFunction
}

module.exports = { http, HttpRequest, HttpResponse, HTTP_FUNCTION }
