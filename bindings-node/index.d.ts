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

export interface InitOptions {
  workerName?: string
  invocationTimeoutMs?: number
  [option: string]: unknown
}

export declare class III {
  readonly address: string
  createChannel(bufferSize?: number): Promise<Channel>
  trigger<R = any, P = unknown>(request: TriggerRequest<P>): Promise<R>
  registerFunction<I = any, R = any>(
    id: string | { id: string; description?: string },
    handler: (input: I) => R | Promise<R>,
    options?: { description?: string },
  ): RegisteredRef
  registerTrigger(trigger: { type: string; function_id: string; config?: unknown }): RegisteredRef
  shutdown(): Promise<void>
}

export declare function registerWorker(url: string, options?: InitOptions): III
