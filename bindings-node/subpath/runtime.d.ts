export { FunctionRef, IIIConnectionState, TriggerTypeRef } from '../index'
