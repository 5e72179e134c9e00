'use strict'
// `iii-sdk/protocol`, as the published client has it: the message type names (the rest are types).
const MessageType = Object.freeze({
  RegisterFunction: 'registerfunction',
  UnregisterFunction: 'unregisterfunction',
  InvokeFunction: 'invokefunction',
  InvocationResult: 'invocationresult',
  RegisterTriggerType: 'registertriggertype',
  RegisterTrigger: 'registertrigger',
  UnregisterTrigger: 'unregistertrigger',
  UnregisterTriggerType: 'unregistertriggertype',
  TriggerRegistrationResult: 'triggerregistrationresult',
  WorkerRegistered: 'workerregistered',
  Reattach: 'reattach',
})

module.exports = { MessageType }
