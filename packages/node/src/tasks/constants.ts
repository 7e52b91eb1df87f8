/**
 * Task board limits and timings (SPEC.md §14). No imports: the CLI's parser and hooks read
 * these through `@claudemesh/node/client` without loading the task schemas (and zod).
 */
export const TASK_PRIORITIES = ['high', 'normal', 'low'] as const
export const TASK_STATUSES = ['open', 'done', 'cancelled'] as const
export const MAX_TITLE_LENGTH = 200
/** A task's body and a completion's result, as JSON (UTF-8 bytes). */
export const MAX_TASK_TEXT_BYTES = 16 * 1024
export const MAX_DEPS = 32
/** A lease: at least 1 s, at most a day. */
export const MIN_LEASE_MS = 1_000
export const MAX_LEASE_MS = 24 * 3600_000

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
