'use strict'
// iii-sdk for Node.js (CommonJS entry point).
const { III, Channel, TriggerAction, registerWorker, currentInvocation } = require('./lib/worker')
const { ChannelReader, ChannelWriter } = require('./lib/channels')
const { http, HttpRequest, HttpResponse } = require('./lib/http')
const { InvocationError } = require('./lib/errors')

module.exports = {
  registerWorker,
  currentInvocation,
  http,
  TriggerAction,
  III,
  Channel,
  ChannelReader,
  ChannelWriter,
  HttpRequest,
  HttpResponse,
  InvocationError,
}
