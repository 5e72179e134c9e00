// A worker on a listener with access rules, written for the *published* Node client
// (iii-sdk, installed by tests/interop/setup.sh into $III_INTEROP_CACHE/node), or for our Node
// package with III_INTEROP_NODE_SDK=<bindings-node>. It passes `headers` to registerWorker as
// the published client documents, so the listener's auth function sees its token.
//
//   III_URL=ws://… III_ACCESS_TOKEN=good node restricted.mjs
//
// It registers `echo`, `old` and `evil` (the listener's prefix and hooks decide what they
// become), waits until `<III_ACCESS_PREFIX>::echo` answers through the engine, calls
// `api::echo` (exposed), `secret::granted` (granted by name), `api::admin` (forbidden) and
// `secret::hidden` (not exposed), prints `RESULT <json>` of the outcomes and `READY`, and
// serves until its stdin closes. With a token the auth function refuses, it prints
// `RESULT {"refused": <error>}` after one call and exits.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

const emit = (line) => process.stdout.write(`${line}\n`)
console.log = console.debug = console.info = (...args) => console.error(...args)

const CACHE = process.env.III_INTEROP_CACHE ?? path.join(process.env.HOME ?? '/root', '.cache', 'iii-interop')
const SDK_DIR = process.env.III_INTEROP_NODE_SDK
  ? path.resolve(process.env.III_INTEROP_NODE_SDK)
  : path.join(CACHE, 'node', 'node_modules', 'iii-sdk')
const pkg = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8'))
const entry = (e) => (typeof e === 'string' ? e : entry(e.import ?? e.default))
const { registerWorker } = await import(pathToFileURL(path.join(SDK_DIR, entry(pkg.exports['.']))).href)
console.error(`restricted.mjs: iii-sdk ${pkg.version} from ${SDK_DIR}`)

const token = process.env.III_ACCESS_TOKEN ?? ''
const prefix = process.env.III_ACCESS_PREFIX ?? 'tenant'
const iii = registerWorker(process.env.III_URL, {
  headers: { authorization: `Bearer ${token}` },
  otel: { enabled: false },
  enableMetricsReporting: false,
})
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const outcome = async (request) => {
  try {
    return { result: await iii.trigger(request) }
  } catch (error) {
    return { code: error?.code ?? null, message: String(error?.message ?? error) }
  }
}

if (process.env.III_ACCESS_EXPECT_REFUSAL === '1') {
  const refused = await outcome({ function_id: 'api::echo', payload: {}, timeoutMs: 3000 })
  emit(`RESULT ${JSON.stringify({ refused })}`)
  process.exit(0)
}

iii.registerFunction('echo', async (data) => ({ echoed: data }))
iii.registerFunction('old', async () => ({ renamed: true }))
iii.registerFunction('evil', async () => ({ evil: true }))

// Registrations reach the engine in order: once our prefixed `echo` answers, all are in.
const until = Date.now() + 20_000
for (;;) {
  const probe = await outcome({ function_id: `${prefix}::echo`, payload: { probe: true }, timeoutMs: 5000 })
  if (probe.result) break
  if (Date.now() > until) throw new Error(`${prefix}::echo never answered: ${JSON.stringify(probe)}`)
  await sleep(100)
}
const results = {
  exposed: await outcome({ function_id: 'api::echo', payload: { from: 'restricted' } }),
  granted: await outcome({ function_id: 'secret::granted', payload: {} }),
  forbidden: await outcome({ function_id: 'api::admin', payload: {} }),
  hidden: await outcome({ function_id: 'secret::hidden', payload: {} }),
}
emit(`RESULT ${JSON.stringify(results)}`)
emit('READY')
process.stdin.resume()
process.stdin.on('end', async () => {
  await iii.shutdown()
  process.exit(0)
})
