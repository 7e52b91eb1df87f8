export { ControlClient, RemoteError } from './client.js'
export { MAX_CONTROL_LINE } from './protocol.js'
export { ControlServer } from './server.js'
