'use strict'
// `iii-sdk/trigger`, as the published client has it: types only (see trigger.d.ts).
module.exports = {}
