'use strict'
// `iii-sdk/internal`, as the published client has it: types only (see internal.d.ts).
module.exports = {}
