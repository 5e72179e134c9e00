import cjs from './state.js'

export const { StateEventType } = cjs
export default cjs
