// Channels as the published client's programs use them: createChannel from iii-sdk/helpers,
// a ref passed in a trigger payload, Node streams on both ends, text messages, the refs
// helpers, and ending a writer with stream.end() then close().
import { registerWorker } from 'iii-sdk'
import { createChannel, extractChannelRefs, isChannelRef } from 'iii-sdk/helpers'
import { ChannelReader, ChannelWriter } from 'iii-sdk/channel'
import { report } from './report.mjs'

const iii = registerWorker(process.env.III_URL, { workerName: 'compat-channels' })
const out = {}
iii.registerFunction('compat::produce', async (input) => {
  const writer = input.writer
  out['handler gets a ChannelWriter'] = writer instanceof ChannelWriter
  writer.sendMessage(JSON.stringify({ progress: 1 }))
  for (let i = 0; i < 64; i++) writer.stream.write(Buffer.alloc(16 * 1024, i))
  writer.sendMessage(JSON.stringify({ progress: 2 }))
  await new Promise((resolve) => writer.stream.end(resolve))
  writer.close()
  return { sent: 64 * 16 * 1024 }
})
const channel = await createChannel(iii)
out['reader is a ChannelReader'] = channel.reader instanceof ChannelReader
out['refs'] = [isChannelRef(channel.writerRef), isChannelRef(channel.readerRef), isChannelRef({ channel_id: 1 })]
out['extracted'] = extractChannelRefs({ a: [{ w: channel.writerRef }], r: channel.readerRef }).map(([path, ref]) => [path, ref.direction])
const messages = []
channel.reader.onMessage((text) => messages.push(JSON.parse(text)))
const result = iii.trigger({ function_id: 'compat::produce', payload: { writer: channel.writerRef } })
const chunks = []
for await (const chunk of channel.reader.stream) chunks.push(chunk)
const data = Buffer.concat(chunks)
out.result = await result
out.bytes = data.length
out.checksum = data.reduce((sum, byte) => (sum + byte) % 65521, 0)
out.messages = messages
await iii.shutdown()
report(out)
