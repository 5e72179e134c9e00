import type { Channel, III } from './index'

export declare function createChannel(iii: III, bufferSize?: number): Promise<Channel>
