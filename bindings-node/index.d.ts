// Types of the iii-sdk package (hand-written; the native layer is internal).
import type { Readable, Writable } from 'node:stream'
import type { HttpInvocationConfig } from '@iii-dev/helpers/http'
import type { MessageType } from './subpath/protocol'

export type { EnqueueResult } from '@iii-dev/helpers/queue'
export type { HttpInvocationConfig, MessageType }

/** The call a running handler serves (`currentInvocation()`), with its W3C trace context. */
export interface InvocationContext {
  function_id: string
  /** The id the engine gave the call (it gives every call one). */
  invocation_id?: string
  traceparent?: string
  tracestate?: string
  baggage?: string
}

/** The call the running handler serves, or `undefined` outside a handler. */
export declare function currentInvocation(): InvocationContext | undefined

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

/** What a channel end has moved so far. */
export interface ChannelEndStats {
  bytes: number
  frames: number
  messages: number
  /** Time a writer waited for a slow reader, or a reader for data. */
  blockedMs: number
}

export declare class ChannelWriter {
  /** What this writer has written so far. */
  stats(): ChannelEndStats
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
  /** What this reader has received so far. */
  stats(): ChannelEndStats
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

/** How a call is routed: fire-and-forget, or through a named queue. */
export type TriggerActionValue = { type: 'void' } | { type: 'enqueue'; queue?: string }

export declare const TriggerAction: {
  Void(): { type: 'void' }
  Enqueue(options?: { queue?: string }): { type: 'enqueue'; queue?: string }
}

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** A call: the function, its input, how it is routed, its timeout, metadata for the handler. */
export interface TriggerRequest<TInput = unknown> {
  function_id: string
  payload?: TInput
  action?: TriggerActionValue
  timeoutMs?: number
  /** Handed to the called function's handler as its second argument. */
  metadata?: unknown
  /** W3C trace context; inside a handler, the served call's is carried on when none is given. */
  traceparent?: string
  tracestate?: string
  baggage?: string
}

/** A function handler: the input, and the metadata the caller sent (if any). */
export type RemoteFunctionHandler<TInput = any, TOutput = any> = (data: TInput, metadata?: JsonValue) => Promise<TOutput>

/** A JSON-Schema-like description of a function's input or output. */
export type RegisterFunctionFormat = {
  name?: string
  description?: string
  type?: 'string' | 'number' | 'boolean' | 'object' | 'array' | 'null' | 'map' | 'integer'
  properties?: Record<string, unknown>
  items?: unknown
  required?: string[]
  [key: string]: unknown
}

/** The `registerfunction` message. */
export type RegisterFunctionMessage = {
  message_type: MessageType.RegisterFunction
  id: string
  description?: string
  request_format?: RegisterFunctionFormat
  response_format?: RegisterFunctionFormat
  metadata?: Record<string, unknown>
  /** Set for a function the engine calls over HTTP (see `registerFunction(id, config)`). */
  invocation?: HttpInvocationConfig
}
export type RegisterFunctionInput = Omit<RegisterFunctionMessage, 'message_type'>
/** What a function is registered with besides its handler. */
export type RegisterFunctionOptions = Omit<RegisterFunctionMessage, 'message_type' | 'id'>

/** The `registertrigger` message. */
export type RegisterTriggerMessage = {
  id: string
  type: string
  function_id: string
  config: unknown
  metadata?: Record<string, unknown>
}
export type RegisterTriggerInput = Omit<RegisterTriggerMessage, 'id'>

/** The `registertriggertype` message. */
export type RegisterTriggerTypeMessage = {
  message_type: MessageType.RegisterTriggerType
  id: string
  description: string
  trigger_request_format?: unknown
  call_request_format?: unknown
}
export type RegisterTriggerTypeInput = Omit<RegisterTriggerTypeMessage, 'message_type'>

/** An error as the wire carries it. */
export type ErrorBody = { code: string; message: string; stacktrace?: string }

/** A registered trigger. */
export interface Trigger {
  /** The trigger's id (this package's addition). */
  id: string
  unregister(): void
}

/** A registered function. */
export interface FunctionRef {
  id: string
  unregister: () => void
}

/** @deprecated the older name of {@link FunctionRef} / {@link Trigger}. */
export type RegisteredRef = FunctionRef

/** A trigger of a type this worker provides, as the engine hands it over. */
export interface TriggerConfig<TConfig = unknown> {
  id: string
  function_id: string
  config: TConfig
  metadata?: Record<string, unknown>
}

/** Starts and stops the triggers of a provided type. */
export interface TriggerHandler<TConfig = unknown> {
  registerTrigger(config: TriggerConfig<TConfig>): void | Promise<void>
  unregisterTrigger(config: TriggerConfig<TConfig>): void | Promise<void>
}

/** A trigger type this worker provides. */
export interface TriggerTypeRef<TConfig = unknown> {
  id: string
  registerTrigger(functionId: string, config: TConfig, metadata?: Record<string, unknown>): Trigger
  /** Registers the function and binds a trigger of this type to it. */
  registerFunction(
    functionId: string,
    handler: RemoteFunctionHandler,
    config: TConfig,
    metadata?: Record<string, unknown>,
  ): FunctionRef
  unregister(): void
}

/** Where a worker's connection stands. */
export type IIIConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'failed'

/** The request of an HTTP-triggered function with its response writer, as the engine sends it. */
export type InternalHttpRequest<TBody = unknown> = {
  path_params: Record<string, string>
  query_params: Record<string, string | string[]>
  body: TBody
  headers: Record<string, string | string[]>
  method: string
  response: ChannelWriter
  request_body: ChannelReader
}

/** The request `@iii-dev/helpers/http` hands a streaming handler. */
export type StreamRequest<TBody = unknown> = Omit<InternalHttpRequest<TBody>, 'response'>

/** The response `@iii-dev/helpers/http` hands a streaming handler. */
export type StreamResponse = {
  status: (statusCode: number) => void
  headers: (headers: Record<string, string>) => void
  stream: NodeJS.WritableStream
  close: () => void
}

/** What a middleware function receives. */
export type MiddlewareFunctionInput = {
  function_id?: string
  payload: Record<string, unknown>
  action?: TriggerActionValue
  context: Record<string, unknown>
}

/** Worker facts reported to the engine (accepted; this package reports its own). */
export type TelemetryOptions = {
  language?: string
  project_name?: string
  framework?: string
  amplitude_api_key?: string
}

/** The reconnect backoff (defaults: 1000 ms, ×2, at most 30000 ms, ±30 %, forever). */
export interface IIIReconnectionConfig {
  initialDelayMs: number
  maxDelayMs: number
  backoffMultiplier: number
  jitterFactor: number
  /** Attempts before giving up; -1 never gives up. */
  maxRetries: number
}

export interface InitOptions {
  workerName?: string
  /** A description of this worker for the engine's listings. */
  workerDescription?: string
  enableMetricsReporting?: boolean
  invocationTimeoutMs?: number
  reconnectionConfig?: Partial<IIIReconnectionConfig>
  /** Accepted; this package exports no OpenTelemetry data. */
  otel?: Record<string, unknown>
  /** Headers of the WebSocket handshake (e.g. `Authorization`). */
  headers?: Record<string, string>
  telemetry?: TelemetryOptions
  /**
   * How long a call waits for the connection to the engine before it fails with a
   * `ConnectionError` naming the URL and the cause (default 5000). The worker keeps
   * reconnecting in the background.
   */
  connectTimeoutMs?: number
  /**
   * A PEM file of CA certificates trusted for `wss://` engines, besides the system roots and
   * `III_CA_FILE`.
   */
  caFile?: string
}

/** What a worker offers, as the published client types it. */
export interface IIIClient {
  registerTrigger(trigger: RegisterTriggerInput): Trigger
  registerFunction(
    functionId: string,
    handler: RemoteFunctionHandler | HttpInvocationConfig,
    options?: RegisterFunctionOptions,
  ): FunctionRef
  trigger<TInput = unknown, TOutput = any>(request: TriggerRequest<TInput>): Promise<TOutput>
  registerTriggerType<TConfig>(triggerType: RegisterTriggerTypeInput, handler: TriggerHandler<TConfig>): TriggerTypeRef<TConfig>
  unregisterTriggerType(triggerType: RegisterTriggerTypeInput): void
  shutdown(): Promise<void>
}

export declare class III implements IIIClient {
  readonly address: string
  createChannel(bufferSize?: number): Promise<Channel>
  trigger<TInput = unknown, TOutput = any>(request: TriggerRequest<TInput>): Promise<TOutput>
  /**
   * Registers a function: a handler `(input, metadata?)` (sync or async), or an
   * `HttpInvocationConfig` for a function the engine calls over HTTP.
   */
  registerFunction<I = any, R = any>(
    id: string | ({ id: string } & RegisterFunctionOptions),
    handler: ((input: I, metadata?: JsonValue) => R | Promise<R>) | HttpInvocationConfig,
    options?: RegisterFunctionOptions,
  ): FunctionRef
  registerTrigger(trigger: RegisterTriggerInput): Trigger
  /** Provides a trigger type: the engine hands this worker every trigger of the type. */
  registerTriggerType<TConfig = unknown>(
    triggerType: RegisterTriggerTypeInput | { id: string; description?: string },
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

export { InvocationError, InvocationErrorInit } from './subpath/errors'
