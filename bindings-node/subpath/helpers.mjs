import cjs from './helpers.js'

export const { createChannel, createStream, isChannelRef, extractChannelRefs, ChannelDirection, ChannelItem } = cjs
export default cjs
