export { InternalHttpRequest } from '../index'
