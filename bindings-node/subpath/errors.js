'use strict'
// `iii-sdk/errors`, as the published client has it.
module.exports = require('../lib/errors')
