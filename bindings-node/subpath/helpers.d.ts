import type { Channel, IIIClient, StreamChannelRef } from '../index'
import type { IStream } from './stream'

export declare function createChannel(iii: IIIClient, bufferSize?: number): Promise<Channel>
export declare function createStream<TData>(iii: IIIClient, streamName: string, stream: IStream<TData>): void
export declare function isChannelRef(value: unknown): value is StreamChannelRef
export declare function extractChannelRefs(data: unknown): Array<[string, StreamChannelRef]>
export declare const ChannelDirection: { readonly Read: 'read'; readonly Write: 'write' }
export type ChannelDirection = (typeof ChannelDirection)[keyof typeof ChannelDirection]
export type ChannelItem = { type: 'text'; value: string } | { type: 'binary'; value: Uint8Array }
export declare const ChannelItem: {
  readonly Text: (value: string) => ChannelItem
  readonly Binary: (value: Uint8Array) => ChannelItem
}
