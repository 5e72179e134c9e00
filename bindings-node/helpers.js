'use strict'
// `iii-sdk/helpers`, as the published client has it. The ref walk is the core's.
const native = require('./lib/native')
const { createChannel } = require('./lib/worker')

/** Which end of a channel a ref opens. */
const ChannelDirection = Object.freeze({ Read: 'read', Write: 'write' })

/** Whether `value` is a channel ref: `channel_id`, `access_key`, `direction` of read or write. */
function isChannelRef(value) {
  return value !== null && typeof value === 'object' && native.isChannelRef(JSON.stringify(value))
}

/** Every channel ref in `data`, at any depth, as `[path, ref]` (paths like `items[0].writer`). */
function extractChannelRefs(data) {
  return JSON.parse(native.extractChannelRefs(JSON.stringify(data === undefined ? null : data)))
}

module.exports = { createChannel, isChannelRef, extractChannelRefs, ChannelDirection }
