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
}

/** A function handler as the published client types it. */
export type RemoteFunctionHandler<TInput = any, TOutput = any> = (data: TInput) => Promise<TOutput>
