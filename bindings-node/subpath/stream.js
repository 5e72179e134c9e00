'use strict'
// `iii-sdk/stream`, as the published client has it: types only (see stream.d.ts).
module.exports = {}
