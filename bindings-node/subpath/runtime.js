'use strict'
// `iii-sdk/runtime`, as the published client has it: types only (see runtime.d.ts).
module.exports = {}
