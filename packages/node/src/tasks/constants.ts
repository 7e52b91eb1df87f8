/** Task board limits and timings (SPEC.md §14). */
export {
  MAX_DEPS,
  MAX_LEASE_MS,
  MAX_TASK_TEXT_BYTES,
  MAX_TITLE_LENGTH,
  MIN_LEASE_MS,
  TASK_PRIORITIES,
  TASK_STATUSES
} from '../state/task-schema.js'

/** A claim's lease when the caller names none. */
export const DEFAULT_LEASE_MS = 5 * 60_000
/** How often the holder looks for leases to renew; one is renewed once a third of its TTL has passed. */
export const RENEW_CHECK_MS = 1_000
/** After writing a claim, how long to pull from connected peers before answering (SPEC.md §14.4). */
export const SETTLE_MS = 3_000
/** Shortest id prefix a caller may use for a task. */
export const MIN_ID_PREFIX = 4

/** Why a session is told of a task (SPEC.md §14.8): it watches it, is its assignee, or held it. */
export type TaskWhy = 'watcher' | 'assignee' | 'holder'

/** Why a session is told of a task, in words (the MCP push and the daemon's lines). */
export const TASK_WHY: Record<TaskWhy, string> = { watcher: 'you watch it', assignee: 'assigned to you', holder: 'you held it' }
