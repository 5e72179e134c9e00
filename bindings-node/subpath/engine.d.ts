/** The engine's built-in functions (call them with `trigger`). */
export declare const EngineFunctions: {
  readonly LIST_FUNCTIONS: 'engine::functions::list'
  readonly INFO_FUNCTIONS: 'engine::functions::info'
  readonly LIST_WORKERS: 'engine::workers::list'
  readonly INFO_WORKERS: 'engine::workers::info'
  readonly LIST_TRIGGERS: 'engine::triggers::list'
  readonly INFO_TRIGGERS: 'engine::triggers::info'
  readonly LIST_REGISTERED_TRIGGERS: 'engine::registered-triggers::list'
  readonly INFO_REGISTERED_TRIGGERS: 'engine::registered-triggers::info'
  readonly REGISTER_WORKER: 'engine::workers::register'
}

/** The trigger types the engine serves itself. */
export declare const EngineTriggers: {
  readonly FUNCTIONS_AVAILABLE: 'engine::functions-available'
  /** The published engine's log trigger type (this engine does not serve it). */
  readonly LOG: 'log'
}

/** A function handler as the published client types it. */
export { RemoteFunctionHandler } from '../index'
