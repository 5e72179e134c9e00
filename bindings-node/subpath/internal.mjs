import cjs from './internal.js'

export default cjs
