import cjs from './trigger.js'

export default cjs
