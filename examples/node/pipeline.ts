// The channel guide's (docs/ARCHITECTURE.md, Examples) "Streaming Data Between Functions" example (Node / TypeScript tab), as
// written: `pipeline::producer` streams JSON records through a channel to
// `pipeline::consumer`, which returns their count and sum.
//
//   iii &
//   npx tsx pipeline.ts [RECORDS]
//
// It registers both functions, triggers the producer with RECORDS records (default 5000) and
// prints its result as one JSON line. III_URL names the engine (default ws://localhost:49134).
import { registerWorker } from 'iii-sdk'
import type { ChannelReader } from 'iii-sdk'

const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134')

iii.registerFunction(
  'pipeline::consumer',
  async (input: { label: string; reader: ChannelReader }) => {
    const chunks: Buffer[] = []
    for await (const chunk of input.reader.stream) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
    }

    const records = JSON.parse(Buffer.concat(chunks).toString('utf-8'))
    const total = records.reduce((sum: number, r: { value: number }) => sum + r.value, 0)

    return { label: input.label, count: records.length, total }
  },
)

iii.registerFunction(
  'pipeline::producer',
  async (input: { records: { name: string; value: number }[] }) => {
    const channel = await iii.createChannel()

    const writePromise = new Promise<void>((resolve, reject) => {
      channel.writer.stream.end(
        Buffer.from(JSON.stringify(input.records)),
        (err?: Error | null) => (err ? reject(err) : resolve()),
      )
    })

    const result = await iii.trigger({
      function_id: 'pipeline::consumer',
      payload: { label: 'batch-001', reader: channel.readerRef },
    })

    await writePromise
    return result
  },
)

const count = Number(process.argv[2] ?? 5000)
const records = Array.from({ length: count }, (_, i) => ({ name: `item-${i + 1}`, value: i + 1 }))
const result = await iii.trigger({ function_id: 'pipeline::producer', payload: { records } })
console.log(JSON.stringify(result))
await iii.shutdown()
