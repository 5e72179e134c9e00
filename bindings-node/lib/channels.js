'use strict'
// ChannelWriter / ChannelReader: the native channel ends as Node streams.
//
// Writable: each write's callback fires when the core accepted the chunk (within the
// writer's window), so the Writable's buffering follows the channel's backpressure; `end()`
// closes the channel cleanly; `destroy(err)` before the end aborts it. Readable: `_read`
// pulls exactly one chunk from the core per call, so nothing is read ahead of the consumer;
// an aborted or lost writer destroys it with an error carrying `code`.
const { Readable, Writable } = require('node:stream')

const noop = () => {}

/** Marks `promise` handled (failures resurface on the next operation) and returns it. */
function quiet(promise) {
  promise.catch(noop)
  return promise
}

class ChannelWriter {
  constructor(native) {
    this._native = native
    this._stream = null
  }

  /** The ref of this end (what JSON.stringify sends). */
  get ref() {
    return JSON.parse(this._native.refJson)
  }

  toJSON() {
    return this.ref
  }

  /** A Writable over this end (created on first access). */
  get stream() {
    if (!this._stream) this._stream = writableOf(this._native)
    return this._stream
  }

  /** Writes a chunk; resolves once the core accepted it. */
  write(data) {
    return this._native.write(toBuffer(data))
  }

  /** Sends a text message, in order with the data. */
  sendMessage(message) {
    return quiet(this._native.sendMessage(String(message)))
  }

  /** Ends the stream cleanly. */
  close() {
    if (this._stream) {
      const stream = this._stream
      return new Promise((resolve, reject) => {
        stream.end((err) => (err ? reject(err) : resolve()))
      })
    }
    return this._native.close()
  }

  /** Ends the stream as aborted; the reader fails with code `channel_aborted`. */
  abort(reason) {
    const text = reason instanceof Error ? reason.message : String(reason ?? 'aborted')
    const done = this._native.abort(text)
    if (this._stream && !this._stream.destroyed) this._stream.destroy()
    return quiet(done)
  }
}

/**
 * Keeps an 'error' that nobody listens for from crashing the process (an engine that refuses
 * a socket, a reader that left): it is reported as a warning instead. Whoever listens — a
 * write callback, pipeline(), `for await`, an 'error' handler — still gets the error.
 */
function reportUnhandledErrors(stream, what) {
  stream.on('error', (error) => {
    if (stream.listenerCount('error') > 1) return
    // An HTTP client that leaves closes the response's reader: that is no failure to report.
    if (stream._iiiClientMayLeave && error && error.code === 'reader_closed') return
    const code = error && error.code ? ` (${error.code})` : ''
    process.emitWarning(`iii-sdk: ${what} failed${code}: ${error && error.message ? error.message : error}`)
  })
  return stream
}

function writableOf(native) {
  let ended = false
  return reportUnhandledErrors(new Writable({
    write(chunk, _encoding, callback) {
      native.write(chunk).then(() => callback(), callback)
    },
    final(callback) {
      ended = true
      native.close().then(() => callback(), callback)
    },
    destroy(error, callback) {
      if (ended) return callback(error)
      ended = true
      const reason = error ? error.message || String(error) : 'the writer was destroyed'
      native.abort(reason).then(() => callback(error), () => callback(error))
    },
  }), 'a channel writer')
}

class ChannelReader {
  constructor(native) {
    this._native = native
    this._stream = null
  }

  /** The ref of this end (what JSON.stringify sends). */
  get ref() {
    return JSON.parse(this._native.refJson)
  }

  toJSON() {
    return this.ref
  }

  /** A Readable over this end (created on first access). */
  get stream() {
    if (!this._stream) this._stream = readableOf(this._native)
    return this._stream
  }

  /** The next chunk, or null at the clean end. */
  read() {
    return this._native.read()
  }

  /** The rest of the stream as one Buffer. */
  readAll() {
    return this._native.readAll()
  }

  /** Calls `callback(text)` for each text message; starts receiving on its own. */
  onMessage(callback) {
    this._native.onMessage((message) => {
      try {
        const result = callback(message)
        if (result && typeof result.then === 'function') result.then(noop, reportCallbackError)
      } catch (error) {
        reportCallbackError(error)
      }
    })
  }

  /** Closes this end; a pending read fails with code `reader_closed`. */
  close() {
    if (this._stream && !this._stream.destroyed) this._stream.destroy()
    return this._native.close()
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const chunk = await this._native.read()
      if (chunk === null) return
      yield chunk
    }
  }
}

function reportCallbackError(error) {
  process.emitWarning(`iii-sdk: an onMessage callback failed: ${error && error.stack ? error.stack : error}`)
}

function readableOf(native) {
  let ended = false
  return reportUnhandledErrors(new Readable({
    read() {
      native.read().then(
        (chunk) => {
          if (chunk === null) ended = true
          this.push(chunk)
        },
        (error) => {
          ended = true
          this.destroy(error)
        },
      )
    },
    destroy(error, callback) {
      if (ended) return callback(error)
      ended = true
      native.close().then(() => callback(error), () => callback(error))
    },
  }), 'a channel reader')
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data
  if (typeof data === 'string') return Buffer.from(data)
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (data instanceof ArrayBuffer) return Buffer.from(data)
  throw new TypeError('iii-sdk: write() takes a Buffer, a TypedArray, an ArrayBuffer or a string')
}

module.exports = { ChannelReader, ChannelWriter }
