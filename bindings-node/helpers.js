'use strict'
// `iii-sdk/helpers`, as the published client has it.
const { createChannel } = require('./lib/worker')

module.exports = { createChannel }
