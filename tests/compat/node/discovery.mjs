// Engine discovery as the published client's programs use it: the EngineFunctions listings
// through trigger(), and a function bound to engine::functions-available hearing about a
// function registered later.
import { registerWorker } from 'iii-sdk'
import { EngineFunctions, EngineTriggers } from 'iii-sdk/engine'
import { report } from './report.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const iii = registerWorker(process.env.III_URL, { workerName: 'compat-discovery' })
const out = {}
const events = []
iii.registerFunction('compat::watch', async (event) => {
  events.push(event)
  return null
})
iii.registerTrigger({ type: EngineTriggers.FUNCTIONS_AVAILABLE, function_id: 'compat::watch', config: {} })
iii.registerFunction('compat::listed', async (data) => data, { description: 'listed', metadata: { team: 'a' } })
iii.registerTrigger({ type: 'http', function_id: 'compat::listed', config: { api_path: '/compat/listed', http_method: 'GET' } })
await sleep(500)

const listed = await iii.trigger({ function_id: EngineFunctions.LIST_FUNCTIONS, payload: {} })
out.functions = listed.functions
  .filter((f) => f.function_id.startsWith('compat::'))
  .map((f) => [f.function_id, f.description ?? null, f.metadata ?? null])
  .sort()
out['internal hidden'] = !listed.functions.some((f) => f.function_id.startsWith('engine::'))
const info = await iii.trigger({ function_id: EngineFunctions.INFO_FUNCTIONS, payload: { function_id: 'compat::listed' } })
out.info = {
  function_id: info.function_id,
  description: info.description,
  triggers: (info.registered_triggers ?? []).map((t) => t.trigger_type).sort(),
}
const workers = await iii.trigger({ function_id: EngineFunctions.LIST_WORKERS, payload: {} })
out.workers = workers.workers.map((w) => w.name).filter((name) => name?.startsWith('compat-')).sort()
const types = await iii.trigger({ function_id: EngineFunctions.LIST_TRIGGERS, payload: { include_internal: true } })
out['trigger types include http'] = types.triggers.some((t) => t.id === 'http')
const registered = await iii.trigger({ function_id: EngineFunctions.LIST_REGISTERED_TRIGGERS, payload: {} })
out.registered = registered.registered_triggers
  .filter((t) => t.function_id.startsWith('compat::'))
  .map((t) => [t.trigger_type, t.function_id])
  .sort()

await sleep(500)
events.length = 0
iii.registerFunction('compat::late', async (data) => data)
let seen = null
for (let waited = 0; waited < 10000 && !seen; waited += 50) {
  const event = events.find((e) => (e.functions ?? []).some((f) => f.function_id === 'compat::late'))
  if (event) seen = { event: event.event, 'late listed': true }
  else await sleep(50)
}
out['functions-available'] = seen
await iii.shutdown()
report(out)
