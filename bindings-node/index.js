'use strict'
// iii-sdk for Node.js (CommonJS entry point).
const { III, Channel, TriggerAction, registerWorker } = require('./lib/worker')
const { ChannelReader, ChannelWriter } = require('./lib/channels')

module.exports = { registerWorker, TriggerAction, III, Channel, ChannelReader, ChannelWriter }
