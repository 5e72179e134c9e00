import cjs from './helpers.js'

export const { createChannel } = cjs
export default cjs
