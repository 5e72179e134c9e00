// Types of the iii-sdk package (hand-written; the native layer is internal).
import type { Readable, Writable } from 'node:stream'

export interface StreamChannelRef {
  channel_id: string
  access_key: string
  direction: 'read' | 'write'
}

/** An error from the SDK or a remote function: `code` is stable (e.g. `channel_aborted`). */
export interface IIIError extends Error {
  code: string
  kind?: string
  stacktrace?: string
}

export declare class ChannelWriter {
  /** A Writable: the write callback fires once the channel accepted the chunk. */
  readonly stream: Writable
  readonly ref: StreamChannelRef
  write(data: Buffer | Uint8Array | ArrayBuffer | string): Promise<void>
  sendMessage(message: string): Promise<void>
  close(): Promise<void>
  abort(reason?: string | Error): Promise<void>
  toJSON(): StreamChannelRef
}

export declare class ChannelReader implements AsyncIterable<Buffer> {
  /** A Readable that pulls from the channel only when read. */
  readonly stream: Readable
  readonly ref: StreamChannelRef
  read(): Promise<Buffer | null>
  readAll(): Promise<Buffer>
  onMessage(callback: (message: string) => unknown): void
  close(): Promise<void>
  toJSON(): StreamChannelRef
  [Symbol.asyncIterator](): AsyncIterator<Buffer>
}

export interface Channel {
  writer: ChannelWriter
  reader: ChannelReader
  writerRef: StreamChannelRef
  readerRef: StreamChannelRef
}

export type TriggerActionValue = { type: 'void' } | { type: 'enqueue'; queue?: string }

export declare const TriggerAction: {
  Void(): { type: 'void' }
  Enqueue(options?: { queue?: string }): { type: 'enqueue'; queue?: string }
}

export interface TriggerRequest<P = unknown> {
  function_id: string
  payload?: P
  action?: TriggerActionValue
  timeoutMs?: number
}

export interface RegisteredRef {
  id: string
  unregister(): void
}

/** A trigger of a type this worker provides, as the engine hands it over. */
export interface TriggerConfig<TConfig = unknown> {
  id: string
  function_id: string
  config: TConfig
  metadata?: Record<string, unknown>
}

/** Starts and stops the triggers of a provided type. */
export interface TriggerHandler<TConfig = unknown> {
  registerTrigger(trigger: TriggerConfig<TConfig>): void | Promise<void>
  unregisterTrigger(trigger: TriggerConfig<TConfig>): void | Promise<void>
}

/** A trigger type this worker provides. */
export interface TriggerTypeRef<TConfig = unknown> {
  id: string
  registerTrigger(functionId: string, config: TConfig, metadata?: Record<string, unknown>): RegisteredRef
  registerFunction(
    functionId: string,
    handler: (input: any) => unknown,
    config: TConfig,
    metadata?: Record<string, unknown>,
  ): RegisteredRef
  unregister(): void
}

/** What a function is registered with besides its handler, as the published client has it. */
export interface RegisterFunctionOptions {
  description?: string
  metadata?: Record<string, unknown>
  request_format?: Record<string, unknown>
  response_format?: Record<string, unknown>
}

export interface InitOptions {
  workerName?: string
  /** A description of this worker for the engine's listings. */
  workerDescription?: string
  invocationTimeoutMs?: number
  /**
   * How long a call waits for the connection to the engine before it fails with a
   * `ConnectionError` naming the URL and the cause (default 5000). The worker keeps
   * reconnecting in the background.
   */
  connectTimeoutMs?: number
  [option: string]: unknown
}

export declare class III {
  readonly address: string
  createChannel(bufferSize?: number): Promise<Channel>
  trigger<R = any, P = unknown>(request: TriggerRequest<P>): Promise<R>
  registerFunction<I = any, R = any>(
    id: string | ({ id: string } & RegisterFunctionOptions),
    handler: (input: I) => R | Promise<R>,
    options?: RegisterFunctionOptions,
  ): RegisteredRef
  registerTrigger(trigger: { type: string; function_id: string; config?: unknown; metadata?: Record<string, unknown> }): RegisteredRef
  /** Provides a trigger type: the engine hands this worker every trigger of the type. */
  registerTriggerType<TConfig = unknown>(
    triggerType: { id: string; description?: string },
    handler: TriggerHandler<TConfig>,
  ): TriggerTypeRef<TConfig>
  /** Stops providing a trigger type. */
  unregisterTriggerType(triggerType: { id: string }): void
  /**
   * Resolves once the worker is connected and everything it sent before (registrations
   * included) has reached the engine.
   */
  ready(): Promise<void>
  shutdown(): Promise<void>
}

/** Starts a worker for the engine at `url` (`ws://` or `wss://`; anything else throws a `TypeError`). */
export declare function registerWorker(url: string, options?: InitOptions): III

/** The request of an HTTP-triggered function (see `http()`). */
export interface HttpRequest<B = any> {
  /** The HTTP method, e.g. `GET`. */
  method: string
  /** The registered route pattern, e.g. `/files/:filename`. */
  path: string
  /** The path as requested, when the engine sends it. */
  raw_path?: string
  /** `:name` segments of the route. */
  path_params: Record<string, string>
  /** Query parameters; a repeated key gives an array. */
  query_params: Record<string, string | string[]>
  /** Headers with lower-case names; a repeated header gives an array. */
  headers: Record<string, string | string[]>
  /** The parsed JSON body (for `application/json` requests), else null. */
  body: B | null
  /** The raw request body, read as it arrives (`.stream` is a Readable). */
  request_body: ChannelReader
  /** The trigger that matched. */
  trigger?: { type: 'http'; path: string; method: string }
}

/** The response of an HTTP-triggered function: status and headers first, then the body. */
export interface HttpResponse {
  /** The response channel's writer. */
  readonly writer: ChannelWriter
  /** The body as a Writable: each chunk reaches the client as it is written. */
  readonly stream: Writable
  /** Sets the status code (effective before the first body byte). */
  status(statusCode: number): Promise<void>
  /** Sets headers (effective before the first body byte). */
  headers(headers: Record<string, string | string[]>): Promise<void>
  /** Ends the response; resolves once the engine holds the whole body. */
  close(): Promise<void>
  /**
   * Sends the file `name` from `directory` as the whole response and ends it: 200 with its
   * bytes, content type and length; 400 when `name` is not one plain file name; 404 when there
   * is no such file inside `directory`. No server path reaches the client.
   */
  sendFile(directory: string, name: string): Promise<void>
}

/**
 * Makes `handler(req, res)` a function for an `http` trigger. When the handler resolves the
 * response is ended (if still open) and its result returned (a non-null result sent before
 * any body byte is the whole response: `{ status_code, headers, body }`); when it throws the
 * response is aborted (the client sees a cut-off body, or a 500) and the error rethrown.
 */
export declare function http<R = unknown>(
  handler: (req: HttpRequest, res: HttpResponse) => R | Promise<R>,
): (input: any) => Promise<R>

export { InvocationError, InvocationErrorInit } from './errors'
