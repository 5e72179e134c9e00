/** What the engine or a called function's failure is, as the published client names it. */
export interface InvocationErrorInit {
  code: string
  message: string
  function_id?: string
  stacktrace?: string
}

/** A failed call: `code` (e.g. `invocation_failed`, `function_not_found`), the function, its stack. */
export declare class InvocationError extends Error {
  readonly code: string
  readonly function_id?: string
  readonly stacktrace?: string
  constructor(init: InvocationErrorInit)
}

/** Whether `value` is an error body of the wire protocol: `{ code, message, stacktrace? }`. */
export declare function isErrorBody(value: unknown): value is { code: string; message: string; stacktrace?: string }
