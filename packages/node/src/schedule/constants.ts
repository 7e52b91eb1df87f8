/** Scheduled messages and reminders: limits (SPEC.md §18). */

/** A schedule fires at most this far ahead (one year). */
export const MAX_AHEAD_MS = 366 * 24 * 3600_000
/** An `at` this far in the past is refused as a mistake rather than fired at once. */
export const PAST_GRACE_MS = 1_000
/** Active schedules one session may hold. */
export const MAX_ACTIVE = 256
/** Most targets one schedule names. */
export const MAX_TARGETS = 64
/** Fired and cancelled schedules stay listable this long, then go at the next start. */
export const KEEP_DONE_MS = 7 * 24 * 3600_000
/** Longest timer armed at once (setTimeout's limit is ~24.8 days); a later one is re-armed. */
export const MAX_TIMER_MS = 3600_000
/** After a failed fire (a store error), try that schedule again this much later. */
export const RETRY_MS = 30_000
/** Longest cron expression accepted. */
export const MAX_CRON_CHARS = 128
/** The words that address this session itself (a reminder). */
export const SELF_TARGETS = ['me', 'self', '@me', '@self'] as const
/** Domain separation for occurrence message ids (§18.3). */
export const OCCURRENCE_ID_CONTEXT = 'claudemesh/schedule/v1\0'
