import cjs from './helpers.js'

export const { createChannel, isChannelRef, extractChannelRefs, ChannelDirection } = cjs
export default cjs
