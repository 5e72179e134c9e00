export { Trigger, TriggerConfig, TriggerHandler } from '../index'
