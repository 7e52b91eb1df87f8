/**
 * The light entry point for processes that talk to a running node rather than run one (CLI
 * verbs, hooks): home paths, the registry and the control client, without loading libp2p.
 * `import('@claudemesh/node/client')` costs ~0.1 s against ~0.6 s for the full package.
 */
export { ControlClient, RemoteError } from './control/client.js'
export { alive, controlSocketPath, listRunning, type RegistryEntry } from './discovery/registry.js'
export * from './errors.js'
export { assertPrivate, homeDir, listMeshNames, paths, validateMeshName, validateSessionId, writeFileAtomic } from './home.js'
export type { MeshInfo } from './node.js'
export type { PeerInfo } from './presence/table.js'
export type { Group } from './presence/record.js'
export type { CheckResult, DeliveryStatus, InboxMessage, MessageStatus, SendResult } from './messaging/index.js'
export { MESSAGE_MODES, type MessageMode, PRIORITIES, type Priority } from './messaging/constants.js'
export { GROUP_NAME, STATUSES, type PresenceStatus } from './presence/constants.js'
export { relayId } from './transport/relay-addr.js'
export { checkSetValue } from './state/input.js'
export { sanitizeJson, sanitizeLine, sanitizeText, UNSAFE_CHARS } from './text.js'
export type { ClaimResult, Task } from './tasks/index.js'
export { DEFAULT_LEASE_MS, MAX_LEASE_MS, MIN_LEASE_MS, TASK_PRIORITIES, TASK_STATUSES, TASK_WHY } from './tasks/constants.js'
export type { ScheduleView } from './schedule/record.js'
export type { HandOff } from './context/index.js'
export type { Reservation } from './reservations/rule.js'
export type { Blocked } from './control/reservation-methods.js'
export { DEFAULT_RESERVATION_MS, MAX_RESERVATION_MS, MIN_RESERVATION_MS, RESERVATION_MODES } from './reservations/constants.js'
export type { FileProgress, FileView, GetResult, ShareResult } from './files/files.js'
export { LIMIT_NAMES, parseLimits } from './messaging/limits.js'
