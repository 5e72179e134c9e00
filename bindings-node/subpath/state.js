'use strict'
// `iii-sdk/state`, as the published client has it: the kinds of state change (the rest are types).
const StateEventType = Object.freeze({ Created: 'state:created', Updated: 'state:updated', Deleted: 'state:deleted' })

module.exports = { StateEventType }
