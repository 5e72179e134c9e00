// A channel round trip with the installed iii-sdk tarball: 20 MiB written in 1 MiB pieces to a
// function that reads it all, started before the writes; prints one JSON line. Run from the
// folder the tarball was installed into.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { registerWorker } from 'iii-sdk'

const SIZE = 20 * 1024 * 1024
const PIECE = 1024 * 1024
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

const iii = registerWorker(process.env.III_URL)
iii.registerFunction('packaging::consume', async ({ reader }) => {
  const body = await reader.readAll()
  return { bytes: body.length, sha256: sha256(body) }
})

const channel = await iii.createChannel()
const call = iii.trigger({ function_id: 'packaging::consume', payload: { reader: channel.readerRef } })
const payload = randomBytes(SIZE)
for (let start = 0; start < SIZE; start += PIECE) await channel.writer.write(payload.subarray(start, start + PIECE))
await channel.writer.close()
const result = await call
assert.deepEqual(result, { bytes: SIZE, sha256: sha256(payload) })
const entry = createRequire(import.meta.url).resolve('iii-sdk')
console.log(JSON.stringify({ node: 'ok', bytes: result.bytes, package: entry }))
await iii.shutdown()
