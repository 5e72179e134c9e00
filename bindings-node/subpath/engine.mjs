import cjs from './engine.js'

export const { EngineFunctions, EngineTriggers } = cjs
export default cjs
