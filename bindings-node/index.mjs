// iii-sdk for Node.js (ES module entry point): the CommonJS build re-exported.
import cjs from './index.js'

export const { registerWorker, TriggerAction, III, Channel, ChannelReader, ChannelWriter } = cjs
export default cjs
