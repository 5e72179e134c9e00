'use strict'
// Safe to expose, from Node: listener access rules from a config file in the published
// engine's shape (tests/access/config.yaml) with the auth function and the registration hook
// written in Node, seen from this package's workers and the published Node client passing
// `headers` (both run tests/access/restricted.mjs); and TLS: a channel and an HTTP download
// over wss:// and https:// for this package and the published Node client.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { spawn, execFileSync } = require('node:child_process')

const { registerWorker, http } = require('..')
const { startEngine, freePort } = require('./engine')

const repo = path.resolve(__dirname, '..', '..')
const access = path.join(repo, 'tests', 'access')
const cache = process.env.III_INTEROP_CACHE || path.join(os.homedir(), '.cache', 'iii-interop')
const publishedSdk = path.join(cache, 'node', 'node_modules', 'iii-sdk', 'package.json')

/** The published clients, installed by tests/interop/setup.sh (run here when missing). */
function ensurePublishedClients() {
  if (!fs.existsSync(publishedSdk)) {
    execFileSync('bash', [path.join(repo, 'tests', 'interop', 'setup.sh')], { stdio: 'inherit' })
  }
}

/** The listener's auth function: token `good` is granted, anything else refused. */
async function authenticate(data) {
  if (data.headers.authorization === 'Bearer good') {
    return {
      allowed_functions: ['secret::granted'],
      forbidden_functions: ['api::admin'],
      function_registration_prefix: 'tenant',
      context: { user: 'u1' },
    }
  }
  throw new Error(`bad token from ${data.ip_address}`)
}

/** The registration hook: `evil` is denied, `old` renamed `new`, the rest allowed. */
async function onFunction(data) {
  if (data.function_id === 'evil') throw new Error('no evil here')
  if (data.function_id === 'old') return { function_id: 'new' }
  return {}
}

let engine
let trusted

before(async () => {
  ensurePublishedClients()
  const port = await freePort()
  engine = await startEngine({
    args: ['--config', path.join(access, 'config.yaml')],
    env: { III_ACCESS_PORT: String(port), RUST_LOG: 'info' },
  })
  assert.deepEqual(engine.extraUrls, [`ws://127.0.0.1:${port}`])
  trusted = registerWorker(engine.url)
  trusted.registerFunction('access::auth', authenticate)
  trusted.registerFunction('access::on-function', onFunction)
  for (const id of ['api::echo', 'api::admin', 'secret::granted', 'secret::hidden']) {
    trusted.registerFunction(id, async (data) => ({ served: id, data }))
  }
  await trusted.ready()
})

after(async () => {
  await trusted?.shutdown()
  await engine?.stop()
})

const call = (worker, functionId, payload = {}) => worker.trigger({ function_id: functionId, payload })

/** Runs tests/access/restricted.mjs with `token`, on `sdk` (ours) or the published client. */
function restricted(token, { sdk = null, expectRefusal = false } = {}) {
  const env = {
    ...process.env,
    III_URL: engine.extraUrls[0],
    III_ACCESS_TOKEN: token,
    III_INTEROP_CACHE: cache,
    III_ACCESS_EXPECT_REFUSAL: expectRefusal ? '1' : '0',
  }
  if (sdk) env.III_INTEROP_NODE_SDK = sdk
  else delete env.III_INTEROP_NODE_SDK
  const child = spawn(process.execPath, [path.join(access, 'restricted.mjs')], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    child,
    next: async () => (await lines.next()).value,
    stop: () => new Promise((done) => {
      if (child.exitCode !== null) return done()
      child.once('exit', done)
      child.stdin.end()
    }),
  }
}

async function checkRules(sdk) {
  const refused = restricted('bad', { sdk, expectRefusal: true })
  const refusal = JSON.parse((await refused.next()).replace(/^RESULT /, ''))
  assert.ok(refusal.refused.code && !refusal.refused.result, JSON.stringify(refusal))
  await refused.stop()
  assert.match(engine.output(), /upgrade refused.*401|401.*upgrade refused/)

  const worker = restricted('good', { sdk })
  try {
    const outcomes = JSON.parse((await worker.next()).replace(/^RESULT /, ''))
    assert.equal(outcomes.exposed.result.served, 'api::echo', JSON.stringify(outcomes))
    assert.equal(outcomes.granted.result.served, 'secret::granted')
    assert.equal(outcomes.forbidden.code, 'FORBIDDEN')
    assert.match(outcomes.forbidden.message, /remove from rbac\.forbidden_functions/)
    assert.equal(outcomes.hidden.code, 'FORBIDDEN')
    assert.match(outcomes.hidden.message, /add to rbac\.expose_functions/)
    assert.equal(await worker.next(), 'READY')
    // What it registered, seen from the trusted side: the prefix, the rename, the denial.
    assert.equal((await call(trusted, 'tenant::echo', { n: 1 })).echoed.n, 1)
    assert.deepEqual(await call(trusted, 'tenant::new'), { renamed: true })
    for (const missing of ['echo', 'tenant::old', 'tenant::evil']) {
      await assert.rejects(call(trusted, missing), (error) => error.code === 'function_not_found', missing)
    }
  } finally {
    await worker.stop()
  }
}

test('a Node auth function admits this package by its headers, and calls resolve as documented', async () => {
  await checkRules(path.resolve(__dirname, '..'))
})

test('the published Node client passes headers through the same rules', async () => {
  await checkRules(null)
})

test('this package: a forbidden call is a FORBIDDEN error, a bad token a refused connection', async () => {
  const bad = registerWorker(engine.extraUrls[0], { headers: { Authorization: 'Bearer bad' }, connectTimeoutMs: 1500 })
  await assert.rejects(call(bad, 'api::echo'), (error) => /401/.test(error.message))
  await bad.shutdown()
  const good = registerWorker(engine.extraUrls[0], { headers: { Authorization: 'Bearer good' } })
  await assert.rejects(call(good, 'secret::hidden'), (error) => error.code === 'FORBIDDEN')
  await good.shutdown()
})

// ---------------------------------------------------------------- TLS

/** GET `url` over https trusting the CA file `ca`: the whole body. */
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca: fs.readFileSync(ca) }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks)))
      res.on('error', reject)
    }).on('error', reject)
  })
}

test('a channel and a download over wss:// and https://, ours and the published client', async () => {
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-tls-'))
  execFileSync('bash', [path.join(repo, 'scripts', 'make-test-certs.sh'), certs])
  const ca = path.join(certs, 'ca.pem')
  const tls = await startEngine({
    args: ['--tls-cert', path.join(certs, 'leaf.pem'), '--tls-key', path.join(certs, 'leaf.key')],
  })
  const payload = crypto.randomBytes(3 * 1024 * 1024 + 5)
  const owner = registerWorker(tls.url, { caFile: ca })
  const caller = registerWorker(tls.url, { caFile: ca })
  try {
    assert.match(tls.url, /^wss:\/\//)
    assert.match(tls.httpUrl, /^https:\/\//)
    owner.registerFunction('tls::digest', async (data) => {
      const hash = crypto.createHash('sha256')
      for await (const chunk of data.reader) hash.update(chunk)
      return hash.digest('hex')
    })
    owner.registerFunction('tls::download', http(async (_req, res) => {
      res.status(200)
      res.headers({ 'content-type': 'application/octet-stream' })
      res.stream.end(payload)
    }))
    owner.registerTrigger({ type: 'http', function_id: 'tls::download', config: { api_path: '/download', http_method: 'GET' } })
    await owner.ready()
    const channel = await caller.createChannel()
    channel.writer.stream.end(payload)
    const digest = await call(caller, 'tls::digest', { reader: channel.readerRef })
    assert.equal(digest, crypto.createHash('sha256').update(payload).digest('hex'))

    const body = await httpsGet(`${tls.httpUrl}/download`, ca)
    assert.ok(body.equals(payload), 'the download is byte-exact over https')

    // The published client (trusting the CA the way Node does) writes 4 MiB into a channel
    // whose reader is this package's files::process (the interop worker on our package).
    const env = { ...process.env, III_URL: tls.url, III_INTEROP_CACHE: cache, NODE_EXTRA_CA_CERTS: ca, III_CA_FILE: ca }
    const worker = path.join(repo, 'tests', 'interop', 'peers', 'worker.mjs')
    const server = spawn(process.execPath, [worker, 'serve', 'files'], {
      env: { ...env, III_INTEROP_NODE_SDK: path.resolve(__dirname, '..') },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    try {
      const lines = readline.createInterface({ input: server.stdout })[Symbol.asyncIterator]()
      assert.equal((await lines.next()).value, 'READY')
      const size = 4 * 1024 * 1024
      const out = execFileSync(process.execPath, [worker, 'drive', 'files', '--size', String(size)], { env, timeout: 120_000 })
      const result = JSON.parse(out.toString().split('\n').find((l) => l.startsWith('RESULT ')).slice(7))
      const expected = crypto.createHash('sha256')
        .update(crypto.createHash('shake256', { outputLength: size }).update(`iii-interop:${size}`).digest())
        .digest('hex')
      assert.equal(result.result.bytes, size)
      assert.equal(result.result.sha256, expected)
      assert.equal(result.result.runtime, 'iii-node')

      // The published client serves the guide's download handler over wss://; fetched over https.
      const files = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-node-tls-files-'))
      const report = crypto.randomBytes(2 * 1024 * 1024)
      fs.writeFileSync(path.join(files, 'report.bin'), report)
      const published = spawn(process.execPath, [worker, 'serve', 'download'], {
        env: { ...env, III_INTEROP_FILES_DIR: files },
        stdio: ['pipe', 'pipe', 'inherit'],
      })
      try {
        const ready = readline.createInterface({ input: published.stdout })[Symbol.asyncIterator]()
        assert.equal((await ready.next()).value, 'READY')
        const downloaded = await httpsGet(`${tls.httpUrl}/files/report.bin`, ca)
        assert.ok(downloaded.equals(report), 'the published client\'s download is byte-exact over https')
      } finally {
        published.stdin.end()
        await new Promise((done) => (published.exitCode !== null ? done() : published.once('exit', done)))
      }
    } finally {
      server.stdin.end()
      await new Promise((done) => (server.exitCode !== null ? done() : server.once('exit', done)))
    }
  } finally {
    await owner.shutdown()
    await caller.shutdown()
    await tls.stop()
  }
})
