// The channel guide's (docs/ARCHITECTURE.md, Examples) "Server-Sent Events (SSE) Streaming" example (Node / TypeScript tab),
// as written: `events::stream` answers `GET /events/stream` with five progress events a second
// apart and a final `done` event, each written to the response stream as it happens.
//
//   iii &
//   npx tsx http_sse.ts              # serve until Ctrl-C or stdin ends
//   curl -N http://localhost:3111/events/stream
//
//   npx tsx http_sse.ts fetch        # serve, read the stream once, exit
//
// `fetch` reads the stream through the engine's HTTP port (III_HTTP_URL, default
// http://localhost:3111) and prints the status, the content type, the event text and the
// milliseconds at which each event arrived, as one JSON line. Serving, it prints READY once
// the engine has the route.
import { registerWorker, http } from 'iii-sdk'
import type { HttpRequest, HttpResponse } from 'iii-sdk'

const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134')

iii.registerFunction(
  'events::stream',
  http(async (_req: HttpRequest, res: HttpResponse) => {
    res.status(200)
    res.headers({
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'connection': 'keep-alive',
    })

    for (let i = 1; i <= 5; i++) {
      const frame = `id: ${i}\nevent: progress\ndata: ${JSON.stringify({ step: i, total: 5 })}\n\n`
      res.stream.write(Buffer.from(frame))
      await new Promise((r) => setTimeout(r, 1000))
    }

    const done = `id: 6\nevent: done\ndata: ${JSON.stringify({ message: 'complete' })}\n\n`
    res.stream.write(Buffer.from(done))
    res.stream.end()
  }),
)

iii.registerTrigger({
  type: 'http',
  function_id: 'events::stream',
  config: { api_path: '/events/stream', http_method: 'GET' },
})

async function fetchOnce() {
  const base = process.env.III_HTTP_URL ?? 'http://localhost:3111'
  const started = Date.now()
  const response = await fetch(`${base}/events/stream`)
  let text = ''
  const arrivals: number[] = []
  const decoder = new TextDecoder()
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true })
    const events = text.split('\n\n').length - 1
    while (arrivals.length < events) arrivals.push(Date.now() - started)
  }
  return { status: response.status, content_type: response.headers.get('content-type'), text, arrivals }
}

await iii.ready()
if (process.argv[2] === 'fetch') {
  console.log(JSON.stringify(await fetchOnce()))
} else {
  console.log('READY')
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve).resume()
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  process.stdin.destroy()
}
await iii.shutdown()
