export { Dialer, type DialerInit } from './dialer.js'
export { alive, controlSocketPath, listRunning, register, type RegistryEntry, unregister } from './registry.js'
