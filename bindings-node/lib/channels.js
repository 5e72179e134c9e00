'use strict'
// ChannelWriter / ChannelReader: the native channel ends as Node streams.
//
// Writable: each write's callback fires when the core accepted the chunk (within the
// writer's window: then on the next tick, without a trip through the core's runtime), so the
// Writable's buffering (up to 1 MiB, as the window) follows the channel's backpressure; `end()` closes the channel
// cleanly; `destroy(err)` before the end aborts it. Readable (and read(), readAll(), the
// async iterator): the reader fetches a batch only when its consumer wants a chunk and none is
// at hand; a batch is the core's next chunk plus those the socket already holds (up to 1 MiB),
// so a busy reader crosses to the runtime once per batch and nothing more is read ahead of the
// consumer. Text messages come from the core's on_message through the same queue, so onMessage
// sees each before the bytes sent after it. An aborted or lost writer destroys the Readable
// with an error carrying `code`.
const { Readable, Writable, finished } = require('node:stream')
const native = require('./native')

const noop = () => {}
// What write() and sendMessage() return when the native end accepted at once (it returns null
// then instead of a promise: no trip through the core's runtime for a write within the window).
const DONE = Promise.resolve()

/** Marks `promise` handled (failures resurface on the next operation) and returns it. */
function quiet(promise) {
  promise.catch(noop)
  return promise
}

/** What both ends share: the ref, which is what JSON.stringify sends. */
class ChannelEnd {
  constructor(native) {
    this._native = native
    this._stream = null
  }

  /**
   * What this end has moved so far: `{ bytes, frames, messages, blockedMs }` (`blockedMs`:
   * time a writer waited for a slow reader, or a reader for data).
   */
  stats() {
    return this._native.stats()
  }

  /** The ref of this end. */
  get ref() {
    return JSON.parse(this._native.refJson)
  }

  toJSON() {
    return this.ref
  }

  /** A Node stream over this end (created on first access). */
  get stream() {
    return (this._stream ??= this._open())
  }
}

class ChannelWriter extends ChannelEnd {
  _open() {
    return writableOf(this._native)
  }

  /** Writes a chunk; resolves once the core accepted it. */
  write(data) {
    return this._native.write(toBuffer(data)) ?? DONE
  }

  /** Sends a text message, in order with the data. */
  sendMessage(message) {
    return quiet(this._native.sendMessage(String(message)) ?? DONE)
  }

  /**
   * Ends the stream cleanly; resolves once the engine holds every byte. Closing again, or
   * after `stream.end()`, is no error: it waits for the same end. (Its failure is reported to
   * whoever awaits it, and never as an unhandled rejection when nobody does.)
   */
  close() {
    const stream = this._stream
    if (!stream) return quiet(this._native.close())
    if (!stream.writableEnded && !stream.destroyed) stream.end()
    return quiet(new Promise((resolve, reject) => finished(stream, (err) => (err ? reject(err) : resolve()))))
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
    if (stream._iiiClientMayLeave && error && error.code === native.READER_CLOSED) return
    const code = error && error.code ? ` (${error.code})` : ''
    process.emitWarning(`iii-sdk: ${what} failed${code}: ${error && error.message ? error.message : error}`)
  })
  return stream
}

// The Writable's buffer: as large as the core's window, so that a producer writing in a loop
// hands over up to 1 MiB per turn of the event loop (see writev below).
const WRITABLE_HIGH_WATER_MARK = 1 << 20

function writableOf(native) {
  let ended = false
  // A write the core accepted at once calls back on the next tick, not synchronously: the
  // writes made meanwhile gather in the Writable's buffer and reach the core together
  // (writev), so the core's writer task wakes once per batch instead of once per chunk.
  const done = (pending, callback) => {
    if (pending === null) process.nextTick(callback)
    else pending.then(() => callback(), callback)
  }
  return reportUnhandledErrors(new Writable({
    highWaterMark: WRITABLE_HIGH_WATER_MARK,
    // (A single write comes here too, as a batch of one.)
    writev(chunks, callback) {
      // Queued in order; the callback waits for the last write the core did not accept at
      // once (a failure of any of them is also reported by the next operation).
      let last = null
      for (const { chunk } of chunks) {
        const pending = native.write(chunk)
        if (pending !== null) last = quiet(pending)
      }
      done(last, callback)
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

class ChannelReader extends ChannelEnd {
  constructor(native) {
    super(native)
    // Chunks the native end handed over in a batch (at most 1024) and nobody read yet.
    this._chunks = []
    this._ended = false
    this._filling = null
    this._settle = null
    this._subscribed = false
    this._callbacks = []
  }

  _open() {
    return readableOf(this)
  }

  /** A chunk already handed over, or undefined (null at the clean end). */
  _take() {
    if (this._chunks.length > 0) return this._chunks.shift()
    return this._ended ? null : undefined
  }

  _subscribe() {
    if (this._subscribed) return
    this._subscribed = true
    this._native.subscribe((delivered) => this._delivered(delivered))
  }

  /** Fetches the next batch of chunks (one native pull at a time). */
  _fill() {
    if (!this._filling) {
      this._subscribe()
      this._filling = new Promise((resolve, reject) => (this._settle = { resolve, reject }))
      this._native.pull()
    }
    return this._filling
  }

  /** A text message, a batch or the stream's error from the native end, in wire order. */
  _delivered(delivered) {
    if (typeof delivered === 'string') {
      for (const callback of this._callbacks) deliver(callback, delivered)
      return
    }
    const { resolve, reject } = this._settle
    this._settle = this._filling = null
    this._native.idle()
    if (delivered instanceof Error) return reject(delivered)
    for (const chunk of delivered) this._chunks.push(chunk)
    if (delivered.end) this._ended = true
    resolve()
  }

  /** The next chunk, or null at the clean end. */
  read() {
    const chunk = this._take()
    if (chunk !== undefined) return Promise.resolve(chunk)
    return this._fill().then(() => this.read())
  }

  /** The rest of the stream as one Buffer. */
  async readAll() {
    const chunks = []
    for (;;) {
      const chunk = this._take()
      if (chunk === null) break
      if (chunk === undefined) await this._fill()
      else chunks.push(chunk)
    }
    return Buffer.concat(chunks)
  }

  /**
   * Calls `callback(text)` for each text message, before the bytes sent after it; messages
   * that came before the first callback are kept for it (as the core keeps them). Starts
   * receiving on its own, without keeping the process alive.
   */
  onMessage(callback) {
    this._callbacks.push(callback)
    if (this._callbacks.length > 1) return
    this._subscribe()
    this._native.listen()
  }

  /** Closes this end; a pending read fails with code `reader_closed`. */
  close() {
    this._chunks = []
    if (this._stream && !this._stream.destroyed) this._stream.destroy()
    return this._native.close()
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const chunk = await this.read()
      if (chunk === null) return
      yield chunk
    }
  }
}

function deliver(callback, text) {
  try {
    const result = callback(text)
    if (result && typeof result.then === 'function') result.then(noop, reportCallbackError)
  } catch (error) {
    reportCallbackError(error)
  }
}

function reportCallbackError(error) {
  process.emitWarning(`iii-sdk: an onMessage callback failed: ${error && error.stack ? error.stack : error}`)
}

function readableOf(reader) {
  const native = reader._native
  let ended = false
  return reportUnhandledErrors(new Readable({
    read() {
      // A chunk at hand is pushed at once; otherwise the next batch is fetched.
      const pull = () => {
        const chunk = reader._take()
        if (chunk === undefined) {
          reader._fill().then(pull, (error) => {
            ended = true
            this.destroy(error)
          })
          return
        }
        if (chunk === null) ended = true
        this.push(chunk)
      }
      pull()
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

/** A native `{ json, ends }` as a value: the JSON parsed, each live end put at its path. */
function withEnds({ json, ends }) {
  let value = JSON.parse(json)
  for (const { path, end } of ends) {
    const live = end instanceof native.NativeReader ? new ChannelReader(end) : new ChannelWriter(end)
    if (path.length === 0) {
      value = live
      continue
    }
    let holder = value
    for (let i = 0; i < path.length - 1; i++) holder = holder[path[i]]
    holder[path[path.length - 1]] = live
  }
  return value
}

module.exports = { ChannelReader, ChannelWriter, withEnds }
