export { ChannelReader, ChannelWriter, Channel, StreamChannelRef } from '../index'
