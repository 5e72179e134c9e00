import cjs from './errors.js'

export const { InvocationError, isErrorBody } = cjs
export default cjs
