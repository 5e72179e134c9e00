'use strict'
// The published client's InvocationError: what a call's failure in another worker (or in the
// engine) rejects with, so `instanceof InvocationError` and its fields work as they do there.
// The native layer's error (with `code`, `stacktrace`) is turned into one at the API's edge.

class InvocationError extends Error {
  /** `init`: `{ code, message, function_id?, stacktrace? }`; the message reads `code: message`. */
  constructor(init) {
    const { code, message, function_id: functionId, stacktrace } = init ?? {}
    super(`${code}: ${message}`)
    this.name = 'InvocationError'
    this.code = code
    if (functionId !== undefined) this.function_id = functionId
    if (stacktrace !== undefined) this.stacktrace = stacktrace
  }
}

/** Whether `value` looks like an error body of the wire protocol: `{ code, message }`. */
function isErrorBody(value) {
  return (
    value !== null && typeof value === 'object' && typeof value.code === 'string' && typeof value.message === 'string'
  )
}

/** A native failure of a call to `functionId` as the error the API rejects with. */
function asInvocationError(error, functionId) {
  if (!error || error instanceof InvocationError) return error
  if (error.kind === 'timeout') {
    // As the published client reports it: an InvocationError with code TIMEOUT.
    const timedOut = new InvocationError({ code: error.code, message: 'invocation timed out', function_id: functionId })
    timedOut.kind = error.kind
    return timedOut
  }
  if (error.name !== 'InvocationError') return error
  const prefix = `${error.code}: `
  const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
  const converted = new InvocationError({ code: error.code, message, function_id: functionId, stacktrace: error.stacktrace })
  converted.kind = error.kind
  return converted
}

module.exports = { InvocationError, isErrorBody, asInvocationError }
