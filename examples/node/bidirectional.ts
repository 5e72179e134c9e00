// The channel guide's (docs/ARCHITECTURE.md, Examples) "Bidirectional Streaming with Progress" example (Node / TypeScript
// tab), as written: `transform::coordinator` streams text to `transform::worker` through one
// channel and reads the upper-cased result back through another, collecting the worker's
// progress messages on the side.
//
//   iii &
//   npx tsx bidirectional.ts
//
// It registers both functions, triggers the coordinator with 200 lines of text and prints its
// result as one JSON line. III_URL names the engine (default ws://localhost:49134).
import { registerWorker } from 'iii-sdk'
import type { ChannelReader, ChannelWriter } from 'iii-sdk'

const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134')

iii.registerFunction(
  'transform::worker',
  async (input: { reader: ChannelReader; writer: ChannelWriter }) => {
    const chunks: Buffer[] = []
    let count = 0

    for await (const chunk of input.reader.stream) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
      count++
      input.writer.sendMessage(JSON.stringify({ type: 'progress', chunks: count }))
    }

    const result = Buffer.concat(chunks).toString('utf-8').toUpperCase()
    input.writer.stream.end(Buffer.from(result))

    return { status: 'done' }
  },
)

iii.registerFunction(
  'transform::coordinator',
  async (input: { text: string }) => {
    const inputChannel = await iii.createChannel()
    const outputChannel = await iii.createChannel()

    const progress: unknown[] = []
    outputChannel.reader.onMessage((msg) => progress.push(JSON.parse(msg)))

    inputChannel.writer.stream.end(Buffer.from(input.text))

    const triggerPromise = iii.trigger({
      function_id: 'transform::worker',
      payload: {
        reader: inputChannel.readerRef,
        writer: outputChannel.writerRef,
      },
    })

    const resultChunks: Buffer[] = []
    for await (const chunk of outputChannel.reader.stream) {
      resultChunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
    }

    await triggerPromise
    return {
      result: Buffer.concat(resultChunks).toString('utf-8'),
      progress,
    }
  },
)

const text = Array.from({ length: 200 }, (_, i) => `the quick brown fox jumps over the lazy dog ${i}\n`).join('')
const result = await iii.trigger({ function_id: 'transform::coordinator', payload: { text } })
console.log(JSON.stringify(result))
await iii.shutdown()
