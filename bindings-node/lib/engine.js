'use strict'
// `EngineFunctions` / `EngineTriggers`: the engine's built-in ids under the published client's
// names (the ids themselves come from the core's protocol crate).
const native = require('./native')

const ids = native.engineIds()

const EngineFunctions = Object.freeze({
  LIST_FUNCTIONS: ids.listFunctions,
  INFO_FUNCTIONS: ids.infoFunctions,
  LIST_WORKERS: ids.listWorkers,
  INFO_WORKERS: ids.infoWorkers,
  LIST_TRIGGERS: ids.listTriggers,
  INFO_TRIGGERS: ids.infoTriggers,
  LIST_REGISTERED_TRIGGERS: ids.listRegisteredTriggers,
  INFO_REGISTERED_TRIGGERS: ids.infoRegisteredTriggers,
  REGISTER_WORKER: ids.registerWorker,
})

// LOG names the published engine's log trigger type, which this engine does not serve.
const EngineTriggers = Object.freeze({ FUNCTIONS_AVAILABLE: ids.functionsAvailable, LOG: 'log' })

module.exports = { EngineFunctions, EngineTriggers }
