'use strict'
// `iii-sdk/channel`, as the published client has it.
const { ChannelReader, ChannelWriter } = require('../lib/channels')

module.exports = { ChannelReader, ChannelWriter }
