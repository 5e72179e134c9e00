import cjs from './channel.js'

export const { ChannelReader, ChannelWriter } = cjs
export default cjs
