// Every runtime name of the published client (npm iii-sdk 0.22) and of its HTTP helper
// (@iii-dev/helpers 0.22) imports from the installed package, ESM and CommonJS. Prints the
// names that are missing, and the values of the constants.
import { createRequire } from 'node:module'
import { report } from './report.mjs'

const require = createRequire(import.meta.url)
const expected = {
  'iii-sdk': ['registerWorker', 'TriggerAction', 'InvocationError'],
  'iii-sdk/channel': ['ChannelReader', 'ChannelWriter'],
  'iii-sdk/errors': ['InvocationError', 'isErrorBody'],
  'iii-sdk/engine': ['EngineFunctions', 'EngineTriggers'],
  'iii-sdk/protocol': ['MessageType'],
  'iii-sdk/state': ['StateEventType'],
  'iii-sdk/stream': [],
  'iii-sdk/trigger': [],
  'iii-sdk/runtime': [],
  'iii-sdk/internal': [],
  'iii-sdk/helpers': ['createChannel', 'createStream', 'extractChannelRefs', 'isChannelRef', 'ChannelDirection', 'ChannelItem'],
  '@iii-dev/helpers/http': ['http'],
}
const missing = {}
for (const [specifier, names] of Object.entries(expected)) {
  for (const [how, load] of [['import', (s) => import(s)], ['require', async (s) => require(s)]]) {
    try {
      const module = await load(specifier)
      const absent = names.filter((name) => module[name] === undefined)
      if (absent.length) missing[`${how} ${specifier}`] = absent
    } catch (error) {
      missing[`${how} ${specifier}`] = `${error.code ?? error.name}`
    }
  }
}
const { EngineFunctions, EngineTriggers } = await import('iii-sdk/engine')
const { MessageType } = await import('iii-sdk/protocol')
const { StateEventType } = await import('iii-sdk/state')
const { ChannelItem, ChannelDirection } = await import('iii-sdk/helpers')
const { TriggerAction, InvocationError } = await import('iii-sdk')
const { isErrorBody } = await import('iii-sdk/errors')
const made = new InvocationError({ code: 'X', message: 'y', function_id: 'f' })
report({
  missing,
  EngineFunctions, EngineTriggers, MessageType, StateEventType, ChannelDirection,
  items: [ChannelItem.Text('a'), { type: ChannelItem.Binary(new Uint8Array([1])).type }],
  actions: [TriggerAction.Void(), TriggerAction.Enqueue({ queue: 'q' })],
  error: { name: made.name, message: made.message, code: made.code, function_id: made.function_id, isError: made instanceof Error },
  isErrorBody: [isErrorBody({ code: 'a', message: 'b' }), isErrorBody({ code: 1 })],
})
