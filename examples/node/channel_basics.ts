// The channel guide's (docs/ARCHITECTURE.md, Examples) steps and the channel reference (Node / TypeScript tabs), as written:
// create a channel, write to its stream, hand the reader ref to `files::process` through
// trigger() and read the stream there; then hand a writer ref to `files::generate` and read
// what it wrote from the local reader.
//
//   iii &
//   npx tsx channel_basics.ts
//
// It prints what both functions returned and what was read, as one JSON line. III_URL names
// the engine (default ws://localhost:49134).
import { registerWorker } from 'iii-sdk'
import type { ChannelReader, ChannelWriter } from 'iii-sdk'

const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134')
// The reference pages call the same object `worker`.
const worker = iii

worker.registerFunction('files::process', async (input: { reader: ChannelReader }) => {
  let bytes = 0;
  for await (const chunk of input.reader.stream) {
    bytes += Buffer.isBuffer(chunk) ? chunk.length : Buffer.byteLength(chunk);
  }
  return { bytes };
});

worker.registerFunction('files::generate', async (input: { writer: ChannelWriter }) => {
  input.writer.stream.write(Buffer.from("hello "));
  input.writer.stream.end(Buffer.from("world"));
  return { ok: true };
});

// Guide, step 1: create a channel.
async function guide() {
  const channel = await iii.createChannel()

  // channel.writer    — ChannelWriter (local writable stream)
  // channel.reader    — ChannelReader (local readable stream)
  // channel.writerRef — StreamChannelRef (serializable, pass to another function)
  // channel.readerRef — StreamChannelRef (serializable, pass to another function)

  // Step 3: write data to the channel (the engine holds it until the reader connects).
  channel.writer.stream.write(Buffer.from('first chunk'))
  channel.writer.stream.write(Buffer.from('second chunk'))
  channel.writer.stream.end() // signals completion

  // Step 2: pass the ref to another function.
  const result = await iii.trigger({
    function_id: 'files::process',
    payload: { filename: 'report.csv', reader: channel.readerRef },
  })
  return result
}

// Reference: write to a channel, pass its reader ref.
async function reference() {
  const channel = await worker.createChannel();

  channel.writer.stream.end(Buffer.from("file contents"));

  const result = await worker.trigger({
    function_id: "files::process",
    payload: {
      filename: "report.csv",
      reader: channel.readerRef,
    },
  });
  return result
}

// Reference: pass a writer ref and read the local reader until the other end closes.
async function generate() {
  const channel = await worker.createChannel();

  const called = worker.trigger({ function_id: 'files::generate', payload: { writer: channel.writerRef } })

  const chunks: Buffer[] = []
  let bytes = 0;
  for await (const chunk of channel.reader.stream) {
    bytes += Buffer.isBuffer(chunk) ? chunk.length : Buffer.byteLength(chunk);
    chunks.push(chunk)
  }
  return { result: await called, bytes, text: Buffer.concat(chunks).toString('utf-8') }
}

console.log(JSON.stringify({ guide: await guide(), reference: await reference(), generate: await generate() }))
await iii.shutdown()
