import cjs from './stream.js'

export default cjs
