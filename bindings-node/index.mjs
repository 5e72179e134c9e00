// iii-sdk for Node.js (ES module entry point): the CommonJS build re-exported.
import cjs from './index.js'

export const {
  registerWorker,
  currentInvocation,
  http,
  TriggerAction,
  III,
  Channel,
  ChannelReader,
  ChannelWriter,
  HttpRequest,
  HttpResponse,
  InvocationError,
} = cjs
export default cjs
