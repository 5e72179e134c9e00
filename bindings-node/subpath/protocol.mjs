import cjs from './protocol.js'

export const { MessageType } = cjs
export default cjs
