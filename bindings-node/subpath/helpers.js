'use strict'
// `iii-sdk/helpers`, as the published client has it. The ref walk is the core's.
const native = require('../lib/native')
const { createChannel } = require('../lib/worker')

/** Which end of a channel a ref opens. */
const ChannelDirection = Object.freeze({ Read: 'read', Write: 'write' })

/** One frame of a channel: `{ type: 'text', value }` or `{ type: 'binary', value }`. */
const ChannelItem = Object.freeze({
  Text: (value) => ({ type: 'text', value }),
  Binary: (value) => ({ type: 'binary', value }),
})

/** Whether `value` is a channel ref: `channel_id`, `access_key`, `direction` of read or write. */
function isChannelRef(value) {
  return value !== null && typeof value === 'object' && native.isChannelRef(JSON.stringify(value))
}

/** Every channel ref in `data`, at any depth, as `[path, ref]` (paths like `items[0].writer`). */
function extractChannelRefs(data) {
  return JSON.parse(native.extractChannelRefs(JSON.stringify(data === undefined ? null : data)))
}

/**
 * Registers `stream` (get, set, delete, list, listGroups) as the functions
 * `stream::get(<name>)`, `stream::set(…)`, `stream::delete(…)`, `stream::list(…)` and
 * `stream::list_groups(…)`, as the published client does.
 */
function createStream(iii, streamName, stream) {
  const methods = { get: 'get', set: 'set', delete: 'delete', list: 'list', list_groups: 'listGroups' }
  for (const [name, method] of Object.entries(methods)) {
    iii.registerFunction(`stream::${name}(${streamName})`, (input) => stream[method](input))
  }
}

module.exports = { createChannel, createStream, isChannelRef, extractChannelRefs, ChannelDirection, ChannelItem }
