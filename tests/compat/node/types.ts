// A TypeScript program written against the published client's types only, type-checked
// with `tsc --strict` against each package (it is compiled, not run).
import {
  registerWorker,
  InvocationError,
  TriggerAction,
  type EnqueueResult,
  type IIIClient,
  type InitOptions,
  type InvocationErrorInit,
  type JsonValue,
  type MiddlewareFunctionInput,
  type StreamRequest,
  type StreamResponse,
  type TelemetryOptions,
} from 'iii-sdk'
import { ChannelReader, ChannelWriter, type Channel, type StreamChannelRef } from 'iii-sdk/channel'
import { isErrorBody } from 'iii-sdk/errors'
import { EngineFunctions, EngineTriggers, type RemoteFunctionHandler } from 'iii-sdk/engine'
import {
  MessageType,
  type ErrorBody,
  type RegisterFunctionFormat,
  type RegisterFunctionOptions,
  type RegisterTriggerInput,
  type RegisterTriggerTypeInput,
  type TriggerRequest,
} from 'iii-sdk/protocol'
import { StateEventType, type IState, type StateGetInput, type StateSetResult } from 'iii-sdk/state'
import type { IStream } from 'iii-sdk/stream'
import type { Trigger, TriggerConfig, TriggerHandler } from 'iii-sdk/trigger'
import type { FunctionRef, IIIConnectionState, TriggerTypeRef } from 'iii-sdk/runtime'
import type { InternalHttpRequest } from 'iii-sdk/internal'
import { ChannelDirection, ChannelItem, createChannel, extractChannelRefs, isChannelRef } from 'iii-sdk/helpers'
import { http, type HttpInvocationConfig } from '@iii-dev/helpers/http'

const telemetry: TelemetryOptions = { language: 'typescript', project_name: 'compat' }
const options: InitOptions = {
  workerName: 'compat-types',
  workerDescription: 'type checks',
  invocationTimeoutMs: 5000,
  reconnectionConfig: { maxRetries: 3, initialDelayMs: 100 },
  headers: { authorization: 'Bearer x' },
  telemetry,
}
const iii: IIIClient = registerWorker(process.env.III_URL ?? 'ws://127.0.0.1:49134', options)

const double: RemoteFunctionHandler<{ n: number }, { n: number }> = async (data) => ({ n: data.n * 2 })
const format: RegisterFunctionFormat = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }
const registerOptions: RegisterFunctionOptions = { description: 'doubles', request_format: format, metadata: { team: 'a' } }
const fn: FunctionRef = iii.registerFunction('compat::double', double, registerOptions)
const id: string = fn.id
const withMetadata: FunctionRef = iii.registerFunction('compat::meta', async (data: unknown, metadata?: JsonValue) => ({ data, metadata }))
const remote: HttpInvocationConfig = { url: 'https://example.com/fn', method: 'POST', timeout_ms: 1000, headers: { a: 'b' } }
const remoteRef: FunctionRef = iii.registerFunction('compat::remote', remote)
const triggerInput: RegisterTriggerInput = { type: 'http', function_id: 'compat::double', config: { api_path: '/d' }, metadata: { a: 1 } }
const trigger: Trigger = iii.registerTrigger(triggerInput)

type Tick = { every_ms: number }
const ticks: TriggerHandler<Tick> = {
  async registerTrigger(config: TriggerConfig<Tick>) {
    const every: number = config.config.every_ms
    void every
  },
  async unregisterTrigger(_config: TriggerConfig<Tick>) {},
}
const tickType: RegisterTriggerTypeInput = { id: 'compat::tick', description: 'ticks' }
const tickRef: TriggerTypeRef<Tick> = iii.registerTriggerType(tickType, ticks)
const tickTrigger: Trigger = tickRef.registerTrigger('compat::double', { every_ms: 10 })
const tickFunction: FunctionRef = tickRef.registerFunction('compat::ticked', async () => null, { every_ms: 20 })

const streaming = http(async (req, res) => {
  const method: string = req.method
  res.status(200)
  res.headers({ 'content-type': 'text/plain', 'x-method': method })
  res.stream.write('hello')
  res.close()
})
iii.registerFunction('compat::stream', streaming)

async function calls(): Promise<void> {
  const request: TriggerRequest<{ n: number }> = { function_id: 'compat::double', payload: { n: 1 }, timeoutMs: 100 }
  const doubled = await iii.trigger<{ n: number }, { n: number }>(request)
  const n: number = doubled.n
  const anything = await iii.trigger({ function_id: 'compat::double', payload: { n } })
  void anything
  await iii.trigger({ function_id: 'compat::double', payload: { n }, action: TriggerAction.Void() })
  const queued: EnqueueResult = await iii.trigger({ function_id: 'compat::double', payload: {}, action: TriggerAction.Enqueue({ queue: 'q' }) })
  const receipt: string = queued.messageReceiptId
  void receipt
  try {
    await iii.trigger({ function_id: EngineFunctions.LIST_FUNCTIONS, payload: {} })
  } catch (error) {
    if (error instanceof InvocationError) {
      const code: string = error.code
      const functionId: string | undefined = error.function_id
      void [code, functionId]
    }
  }
  const init: InvocationErrorInit = { code: 'X', message: 'y' }
  const made = new InvocationError(init)
  const body: ErrorBody = { code: made.code, message: made.message }
  const isBody: boolean = isErrorBody(body)
  void isBody

  const channel: Channel = await createChannel(iii, 64)
  const writer: ChannelWriter = channel.writer
  writer.stream.write(Buffer.from('x'))
  writer.sendMessage('progress')
  writer.close()
  channel.reader.onMessage((message: string) => void message)
  const all: Buffer = await channel.reader.readAll()
  void all
  const refs: StreamChannelRef[] = [channel.writerRef, channel.readerRef]
  const found: boolean = isChannelRef(refs[0])
  void found
  void extractChannelRefs({ refs })
  const read: 'read' = ChannelDirection.Read
  void read
  void ChannelItem.Text('t')
  void ChannelItem.Binary(new Uint8Array([1]))
  await iii.trigger({ function_id: EngineTriggers.FUNCTIONS_AVAILABLE, payload: {} }).catch(() => null)
}

const state: IIIConnectionState = 'connected'
const event: StateEventType = StateEventType.Created
const type: MessageType = MessageType.InvokeFunction
const get: StateGetInput = { scope: 's', key: 'k' }
const set: StateSetResult<number> = { new_value: 1 }
let store: IState | undefined
let streamRequest: StreamRequest | undefined
let streamResponse: StreamResponse | undefined
const readerOf = (request: StreamRequest): ChannelReader => request.request_body
let stream: IStream<number> | undefined
let internal: InternalHttpRequest | undefined
let middleware: MiddlewareFunctionInput | undefined
void [streamRequest, streamResponse, readerOf, id, withMetadata, remoteRef, trigger, tickTrigger, tickFunction, calls, state, event, type, get, set, store, stream, internal, middleware]

fn.unregister()
trigger.unregister()
tickRef.unregister()
iii.unregisterTriggerType(tickType)
await iii.shutdown()
