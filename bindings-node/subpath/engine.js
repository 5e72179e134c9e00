'use strict'
// `iii-sdk/engine`, as the published client has it.
module.exports = require('../lib/engine')
