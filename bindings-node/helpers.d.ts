import type { Channel, III, StreamChannelRef } from './index'

export declare function createChannel(iii: III, bufferSize?: number): Promise<Channel>
export declare function isChannelRef(value: unknown): value is StreamChannelRef
export declare function extractChannelRefs(data: unknown): Array<[string, StreamChannelRef]>
export declare const ChannelDirection: { readonly Read: 'read'; readonly Write: 'write' }
