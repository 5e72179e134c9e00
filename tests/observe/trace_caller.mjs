// Calls a function through the engine with the *published* Node client, inside an
// OpenTelemetry context carrying a known span and baggage (the client injects the active
// context into `traceparent` / `baggage`). Prints the function's result as one JSON line.
//
// Usage: node trace_caller.mjs PROJECT_DIR URL FUNCTION_ID TRACEPARENT BAGGAGE_KEY BAGGAGE_VALUE
import { createRequire } from 'node:module'
import * as path from 'node:path'

const [modules, url, functionId, traceparent, key, value] = process.argv.slice(2)
const require = createRequire(path.join(modules, 'caller.js'))
const api = require('@opentelemetry/api')
const { W3CTraceContextPropagator, W3CBaggagePropagator, CompositePropagator } = require('@opentelemetry/core')
const { AsyncHooksContextManager } = require('@opentelemetry/context-async-hooks')
const { registerWorker } = require('iii-sdk')

api.context.setGlobalContextManager(new AsyncHooksContextManager().enable())
api.propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
)
const [, traceId, spanId] = traceparent.split('-')
let ctx = api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId, spanId, traceFlags: 1, isRemote: true })
ctx = api.propagation.setBaggage(ctx, api.propagation.createBaggage({ [key]: { value } }))

const iii = registerWorker(url)
try {
  const result = await api.context.with(ctx, () =>
    iii.trigger({ function_id: functionId, payload: {}, timeoutMs: 10_000 }),
  )
  console.log(JSON.stringify(result))
} finally {
  await iii.shutdown?.()
  process.exit(0)
}
