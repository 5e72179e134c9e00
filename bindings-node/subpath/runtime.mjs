import cjs from './runtime.js'

export default cjs
