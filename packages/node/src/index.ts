/**
 * @packageDocumentation
 *
 * The claudemesh node: a libp2p peer keyed by a Claude Code session's stable key, in a
 * private mesh, with discovery, signed presence, a LevelDB store and a local control socket.
 *
 * @example
 *
 * ```ts
 * import '@claudemesh/node/polyfill'
 * import { createMeshNode, createMesh, homeDir } from '@claudemesh/node'
 *
 * const home = homeDir()
 * await createMesh(home, 'team')
 * const node = await createMeshNode({ home, mesh: 'team', session: crypto.randomUUID(), name: 'alice' })
 * node.addEventListener('peer:join', evt => { console.error('joined:', evt.detail.name) })
 * await node.start()
 * ```
 */
export { decodeFrame, encodeFrame } from './codec.js'
export { ControlClient, ControlServer, RemoteError } from './control/index.js'
export { alive, controlSocketPath, Dialer, listRunning, type RegistryEntry } from './discovery/index.js'
export * from './errors.js'
export * as fields from './fields.js'
export {
  assertPrivate,
  assertPrivateHome,
  assertPrivateTree,
  ensureDir,
  homeDir,
  paths,
  readFileOrUndefined,
  validateMeshName,
  validateSessionId,
  writeFileAtomic
} from './home.js'
export * from './identity/index.js'
export { createMeshNode } from './create-node.js'
export { DEFAULT_FLUSH_MS, MeshNode, type MeshInfo, type MeshNodeEvents, type MeshNodeInit } from './node.js'
export { type CourierOptions, type CourierOutcome, runCourier } from './courier.js'
export { DEFAULT_TIMINGS, presenceTopic, STATUSES, type PresenceStatus, type PresenceTimings } from './presence/constants.js'
export { GroupSchema, type Group, type PresenceBody, signRecord, verifyRecord } from './presence/record.js'
export type { PeerInfo } from './presence/table.js'
export {
  ALL,
  type CheckResult,
  type DeliveryStatus,
  type InboxMessage,
  MAX_BODY_BYTES,
  type MessageStatus,
  Messaging,
  PRIORITIES,
  type Priority,
  type RejectReason,
  type SendOptions,
  type SendResult
} from './messaging/index.js'
export { MAX_QUERY_CHARS, MAX_QUERY_TERMS, type Note, type Recalled, SharedMemory } from './memory/index.js'
export { type StateChange, type StateEntry, SharedState } from './state/index.js'
export { resolveAssignee } from './tasks/assignee.js'
export {
  type ClaimResult,
  DEFAULT_LEASE_MS,
  MAX_LEASE_MS,
  MIN_LEASE_MS,
  type Task,
  type TaskAssigned,
  TaskBoard,
  type TaskConflict,
  type TaskFilter,
  type TaskLost,
  type TaskNotice,
  type TaskNoticeKind,
  TASK_PRIORITIES,
  TASK_STATUSES,
  TASK_WHY
} from './tasks/index.js'
export {
  isSelf,
  parseDuration,
  parseTime,
  type Schedule,
  type ScheduleInput,
  Scheduler,
  scheduleView,
  type ScheduleView
} from './schedule/index.js'
export { type HandOff, type HandOffInput, SharedContext } from './context/index.js'
export { getContext, shareContext } from './control/context-methods.js'
export { type Layout, openStore, type Store } from './store/index.js'
export { SESSION_LAYOUT } from './session-store.js'
export * from './reservations/index.js'
export { type Blocked, checkPaths, listReservations, releaseFiles, reserveFiles } from './control/reservation-methods.js'
export {
  CHUNK_BYTES,
  DEFAULT_MAX_FILE_BYTES,
  type FileProgress,
  Files,
  type FileView,
  type GetResult,
  megabytes,
  type ShareResult
} from './files/index.js'
export { createTransport, type MeshLibp2p } from './transport/index.js'
export { sanitizeJson, sanitizeLine, sanitizeText, UNSAFE_CHARS } from './text.js'
// the parts a relay is built from (relay/, SPEC.md §12)
export { Presence } from './presence/presence.js'
export { encodeSummary } from './sync-summary.js'
export { GroupCommit, type BatchOp } from './store/commit.js'
export { sublevel, type Sublevel } from './store/index.js'
export { decodeDm, idBytes, idText } from './messaging/envelope.js'
export { Inbox } from './messaging/inbox.js'
export { DEFAULT_TTL_MS, MAX_ACK_IDS, MAX_CLOCK_SKEW_MS } from './messaging/constants.js'
export { lpOptions } from './messaging/lp.js'
export { Pump, TurnFlusher } from './serial.js'
export * from './messaging/mailbox/frames.js'
export { relayPeerIds } from './node.js'
