'use strict'
// Every program in examples/node (the channel guide's Node/TypeScript examples as written; see
// docs/ARCHITECTURE.md) type-checks against index.d.ts and runs against the engine, printing what its guide example
// describes. The examples are their own npm project: `npm install` in examples/node links
// this package and brings tsx and typescript.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFile } = require('node:child_process')
const { once } = require('node:events')
const { promisify } = require('node:util')

const { startEngine } = require('./engine')

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples', 'node')
const TEXT = Array.from({ length: 200 }, (_, i) => `the quick brown fox jumps over the lazy dog ${i}\n`).join('')

// Each example and the test that runs it.
const RUN_BY = {
  'channel_basics.ts': 'channel basics',
  'pipeline.ts': 'pipeline',
  'bidirectional.ts': 'bidirectional',
  'http_download.ts': 'http download',
  'http_sse.ts': 'http sse',
}

let engine

function requireInstalled() {
  for (const tool of ['tsx', 'typescript', 'iii-sdk']) {
    if (!fs.existsSync(path.join(EXAMPLES, 'node_modules', tool))) {
      assert.fail(`examples/node is not installed (no ${tool}): run \`npm install\` in examples/node`)
    }
  }
}

before(async () => {
  engine = await startEngine()
})

after(async () => {
  if (engine) await engine.stop()
})

/** Starts `example` with tsx; resolves with the child and a promise of its whole stdout. */
function start(example, args = [], env = {}) {
  requireInstalled()
  const child = spawn(process.execPath, ['--import', 'tsx', example, ...args], {
    cwd: EXAMPLES,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, III_URL: engine.url, III_HTTP_URL: engine.httpUrl, ...env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal, stdout, stderr }))
  return { child, exited, output: () => stdout }
}

/** GET `url` with its path sent exactly as given: `{ status, body }`. */
function rawGet(url) {
  const { hostname, port } = new URL(url)
  const requestPath = url.slice(url.indexOf('/', url.indexOf('//') + 2))
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path: requestPath }, (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk) => (body += chunk))
        response.on('end', () => resolve({ status: response.statusCode, body }))
      })
      .on('error', reject)
  })
}

/** Runs `example` to its end and returns the JSON line it printed. */
async function run(example, args = [], env = {}) {
  const { child, exited } = start(example, args, env)
  child.stdin.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const { code, signal, stdout, stderr } = await exited
  clearTimeout(timer)
  assert.equal(signal, null, `${example} was killed (hung?)\n${stderr}`)
  assert.equal(code, 0, `${example} exited ${code}\n${stderr}`)
  const lines = stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

test('every example is run by a test', () => {
  const found = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts')).sort()
  assert.deepEqual(found, Object.keys(RUN_BY).sort())
})

test('the examples type-check against index.d.ts (tsc --noEmit, strict)', async () => {
  requireInstalled()
  const tsc = path.join(EXAMPLES, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    await promisify(execFile)(process.execPath, [tsc, '--noEmit', '-p', EXAMPLES], { cwd: EXAMPLES })
  } catch (error) {
    assert.fail(`tsc found type errors:\n${error.stdout}${error.stderr}`)
  }
})

test('channel basics: a reader ref to files::process, a writer ref to files::generate', async () => {
  assert.deepEqual(await run('channel_basics.ts'), {
    guide: { bytes: 'first chunksecond chunk'.length },
    reference: { bytes: 'file contents'.length },
    generate: { result: { ok: true }, bytes: 11, text: 'hello world' },
  })
})

test('pipeline: 5000 records from producer to consumer', async () => {
  assert.deepEqual(await run('pipeline.ts'), { label: 'batch-001', count: 5000, total: (5000 * 5001) / 2 })
})

test('bidirectional: upper-cased text back, progress messages on the side', async () => {
  const result = await run('bidirectional.ts')
  assert.equal(result.result, TEXT.toUpperCase())
  assert.ok(result.progress.length >= 1, JSON.stringify(result.progress))
  result.progress.forEach((message, i) => assert.deepEqual(message, { type: 'progress', chunks: i + 1 }))
})

test('http download: the file, byte-exact, with the guide headers', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-example-'))
  try {
    const contents = crypto.randomBytes(3 * 1024 * 1024 + 4321)
    fs.writeFileSync(path.join(dir, 'quarterly-report.pdf'), contents)
    const result = await run('http_download.ts', ['quarterly-report.pdf'], { III_FILES_DIR: dir })
    assert.deepEqual(result, {
      status: 200,
      content_type: 'application/octet-stream',
      content_disposition: 'attachment; filename="quarterly-report.pdf"',
      bytes: contents.length,
      sha256: crypto.createHash('sha256').update(contents).digest('hex'),
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('http download: a missing file is a 404; a filename that could leave the directory never reaches it', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-example-'))
  const dir = path.join(root, 'files')
  fs.mkdirSync(dir)
  // A file outside the served directory that a traversal would reach.
  fs.writeFileSync(path.join(root, 'secret.txt'), 'not for download')
  const { child, exited, output } = start('http_download.ts', [], { III_FILES_DIR: dir })
  try {
    const deadline = Date.now() + 20_000
    while (!output().includes('READY')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, 'the example did not get ready')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const missing = await fetch(`${engine.httpUrl}/files/no-such-report.pdf`)
    assert.equal(missing.status, 404)
    assert.ok(!(await missing.text()).includes(root))
    // Sent as written (fetch would resolve the dot segments itself).
    for (const escape of ['..%2Fsecret.txt', '..%2F..%2F..%2Fetc%2Fhostname', '..', '.', '%2E%2E']) {
      const { status, body } = await rawGet(`${engine.httpUrl}/files/${escape}`)
      assert.equal(status, 400, `${escape}: ${body}`)
      assert.ok(!body.includes('not for download') && !body.includes(root), body)
    }
  } finally {
    child.stdin.end()
    await exited
    fs.rmSync(root, { recursive: true, force: true })
  }
})

test('http sse: six events, each arriving about a second after the last', async () => {
  const result = await run('http_sse.ts', ['fetch'])
  assert.equal(result.status, 200)
  assert.equal(result.content_type, 'text/event-stream')
  const expected =
    [1, 2, 3, 4, 5].map((i) => `id: ${i}\nevent: progress\ndata: {"step":${i},"total":5}\n\n`).join('') +
    'id: 6\nevent: done\ndata: {"message":"complete"}\n\n'
  assert.equal(result.text, expected)
  assert.equal(result.arrivals.length, 6)
  for (let i = 1; i < 6; i++) {
    const gap = result.arrivals[i] - result.arrivals[i - 1]
    assert.ok(gap >= 900, `event ${i + 1} came ${gap} ms after the previous one: not streamed`)
  }
})

test('serving: READY, a client that leaves mid-stream crashes nothing, SIGINT exits cleanly', async () => {
  const { child, exited, output } = start('http_sse.ts')
  const deadline = Date.now() + 20_000
  while (!output().includes('READY')) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`no READY: ${output()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  // HEAD gets the head and leaves: the handler's next writes meet a closed reader, which the
  // guide code does not listen for. That must not take the worker down.
  const head = await fetch(`${engine.httpUrl}/events/stream`, { method: 'HEAD' })
  assert.equal(head.status, 200, 'the route is served once READY is printed')
  assert.equal(head.headers.get('content-type'), 'text/event-stream')
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(child.exitCode, null, 'the worker died after the client left')
  const controller = new AbortController()
  const response = await fetch(`${engine.httpUrl}/events/stream`, { signal: controller.signal })
  const reader = response.body.getReader()
  const first = new TextDecoder().decode((await reader.read()).value)
  assert.match(first, /^id: 1\nevent: progress\n/)
  controller.abort()
  // The in-flight handlers finish their loops (up to 5 s), then the process exits on its own.
  child.kill('SIGINT')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const { code, signal, stderr } = await exited
  clearTimeout(timer)
  assert.equal(signal, null, `killed after SIGINT: ${stderr}`)
  assert.equal(code, 0, stderr)
  assert.doesNotMatch(stderr, /Warning|Error/, 'a client leaving is not reported')
})
