/** The `type` of every message on a worker's socket. */
export declare enum MessageType {
  RegisterFunction = 'registerfunction',
  UnregisterFunction = 'unregisterfunction',
  InvokeFunction = 'invokefunction',
  InvocationResult = 'invocationresult',
  RegisterTriggerType = 'registertriggertype',
  RegisterTrigger = 'registertrigger',
  UnregisterTrigger = 'unregistertrigger',
  UnregisterTriggerType = 'unregistertriggertype',
  TriggerRegistrationResult = 'triggerregistrationresult',
  WorkerRegistered = 'workerregistered',
  Reattach = 'reattach',
}

export {
  ErrorBody,
  RegisterFunctionFormat,
  RegisterFunctionInput,
  RegisterFunctionMessage,
  RegisterFunctionOptions,
  RegisterTriggerInput,
  RegisterTriggerMessage,
  RegisterTriggerTypeInput,
  RegisterTriggerTypeMessage,
  TriggerRequest,
} from '../index'
