// Process lifetime: a script that registers a function and does not call shutdown() keeps
// serving; a call that makes it shut down lets it exit.
import { spawn } from 'node:child_process'
import { registerWorker, TriggerAction } from 'iii-sdk'
import { report } from './report.mjs'

const child = spawn(process.execPath, ['--input-type=module', '-e', `
import { registerWorker } from 'iii-sdk'
const iii = registerWorker(process.env.III_URL, { workerName: 'compat-lifetime-child' })
iii.registerFunction('compat::alive', async () => ({ pid: process.pid }))
iii.registerFunction('compat::stop', async () => { setTimeout(() => iii.shutdown(), 10); return 'stopping' })
console.error('registered')
`], { stdio: ['ignore', 'ignore', 'pipe'], cwd: process.cwd() })
let exited = null
child.on('exit', (code) => { exited = code })
await new Promise((resolve) => child.stderr.once('data', resolve))
const iii = registerWorker(process.env.III_URL, { workerName: 'compat-lifetime' })
await new Promise((resolve) => setTimeout(resolve, 1500))
const out = {}
out['running after its script ended'] = exited === null
out.serves = (await iii.trigger({ function_id: 'compat::alive', payload: null })).pid === child.pid
out.stop = (await iii.trigger({ function_id: 'compat::stop', payload: null, action: TriggerAction.Void() })) ?? null
for (let waited = 0; waited < 10000 && exited === null; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
out['exit code after shutdown'] = exited ?? 'still running 10 s after shutdown()'
await iii.shutdown()
report(out)
