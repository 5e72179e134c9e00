// The channel guide's (docs/ARCHITECTURE.md, Examples) "File Download via HTTP Endpoint" example (Node / TypeScript tab):
// `files::download` answers `GET /files/:filename` through the engine's HTTP port, setting the
// status and headers first and piping the file into the response stream. As written, except
// that the directory comes from III_FILES_DIR (default /data/reports, the guide's).
//
//   iii &
//   npx tsx http_download.ts                 # serve until Ctrl-C or stdin ends
//   curl -O http://localhost:3111/files/quarterly-report.pdf
//
//   npx tsx http_download.ts report.pdf      # serve, fetch it once, exit
//
// With a file name it fetches that file itself through the engine's HTTP port (III_HTTP_URL,
// default http://localhost:3111) and prints status, headers, size and sha256 as one JSON line.
// Serving, it prints READY once the engine has the route.
import { registerWorker, http } from 'iii-sdk'
import type { HttpRequest, HttpResponse } from 'iii-sdk'
import * as fs from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { createHash } from 'node:crypto'

const FILES_DIR = process.env.III_FILES_DIR ?? '/data/reports'

const iii = registerWorker(process.env.III_URL ?? 'ws://localhost:49134')

iii.registerFunction(
  'files::download',
  http(async (req: HttpRequest, res: HttpResponse) => {
    const filePath = `${FILES_DIR}/${req.path_params.filename}`

    // Not in the guide: a missing file is a 404, not a failed function (a 500). (The engine
    // refuses a filename of "." or ".." or with a slash: the name is one entry of FILES_DIR.)
    if (!fs.existsSync(filePath) || !fs.statSync(filePath).isFile()) {
      res.status(404)
      return
    }

    res.status(200)
    res.headers({
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${req.path_params.filename}"`,
    })

    await pipeline(fs.createReadStream(filePath), res.stream)
  }),
)

iii.registerTrigger({
  type: 'http',
  function_id: 'files::download',
  config: { api_path: '/files/:filename', http_method: 'GET' },
})

async function fetchOnce(filename: string) {
  const base = process.env.III_HTTP_URL ?? 'http://localhost:3111'
  const response = await fetch(`${base}/files/${encodeURIComponent(filename)}`)
  const body = Buffer.from(await response.arrayBuffer())
  return {
    status: response.status,
    content_type: response.headers.get('content-type'),
    content_disposition: response.headers.get('content-disposition'),
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
  }
}

await iii.ready()
if (process.argv[2]) {
  console.log(JSON.stringify(await fetchOnce(process.argv[2])))
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
