// Functions, handles and errors as a program written for the published client uses them.
import { registerWorker, InvocationError, TriggerAction } from 'iii-sdk'
import { report } from './report.mjs'

const iii = registerWorker(process.env.III_URL, { workerName: 'compat-functions' })
const out = {}
const ref = iii.registerFunction('compat::double', async (data) => ({ n: data.n * 2 }), { description: 'doubles' })
out.ref_id = ref.id
out.double = await iii.trigger({ function_id: 'compat::double', payload: { n: 21 } })
for (const bad of ['compat::double', '']) {
  try {
    iii.registerFunction(bad, async () => null)
    out[`register '${bad}'`] = 'accepted'
  } catch (error) {
    out[`register '${bad}'`] = error.constructor.name
  }
}
iii.registerFunction('compat::metadata', async (data, metadata) => ({ data, metadata }))
out.metadata = await iii.trigger({ function_id: 'compat::metadata', payload: 1, metadata: { tenant: 't1' } })
iii.registerFunction('compat::fails', async () => {
  throw new RangeError('no such thing')
})
try {
  await iii.trigger({ function_id: 'compat::fails', payload: {} })
} catch (error) {
  out.failure = {
    isInvocationError: error instanceof InvocationError,
    name: error.name,
    code: error.code,
    message: error.message,
    function_id: error.function_id,
    stackHasType: /RangeError: no such thing/.test(error.stacktrace ?? ''),
  }
}
iii.registerFunction('compat::slow', () => new Promise((resolve) => setTimeout(() => resolve('late'), 1000)))
try {
  await iii.trigger({ function_id: 'compat::slow', payload: {}, timeoutMs: 200 })
} catch (error) {
  out.timeout = { isInvocationError: error instanceof InvocationError, code: error.code, function_id: error.function_id }
}
try {
  await iii.trigger({ function_id: 'compat::nobody', payload: {} })
} catch (error) {
  out.unknown = { isInvocationError: error instanceof InvocationError, code: error.code, function_id: error.function_id }
}
out.void = await iii.trigger({ function_id: 'compat::double', payload: { n: 1 }, action: TriggerAction.Void() }) ?? null
ref.unregister()
await new Promise((resolve) => setTimeout(resolve, 200))
try {
  await iii.trigger({ function_id: 'compat::double', payload: { n: 1 } })
  out['after unregister'] = 'answered'
} catch (error) {
  out['after unregister'] = error.code
}
await iii.shutdown()
report(out)
