/** File reservation limits and defaults (SPEC.md §15). */

export const RESERVATION_MODES = ['exclusive', 'shared'] as const
export type ReservationMode = (typeof RESERVATION_MODES)[number]

/** Reservations one session holds at once (each a set of globs in one repository and branch). */
export const MAX_RESERVATIONS = 32
/** Globs in one reservation, and the longest glob (UTF-16 code units). */
export const MAX_GLOBS = 32
export const MAX_GLOB_LENGTH = 256
/** `*` runs in one path segment of a glob (a `**` segment aside), and `{…}` groups in a glob: bounds on matching time (globs.ts). */
export const MAX_STARS_PER_SEGMENT = 2
export const MAX_BRACES = 4
/** A repository identity (normalized remote URL, or `file://<host><path>`) and a branch name. */
export const MAX_REPO_LENGTH = 1024
export const MAX_BRANCH_LENGTH = 256
/** The reason shown to whoever a reservation stops. */
export const MAX_REASON_LENGTH = 512
/** A reservation lasts at least 1 s and at most a day; one hour when the caller names no TTL. */
export const MIN_RESERVATION_MS = 1_000
export const MAX_RESERVATION_MS = 24 * 3600_000
export const DEFAULT_RESERVATION_MS = 3600_000
/** How long a directory's repository identity is remembered (a checkout may change the branch). */
export const REPO_CACHE_MS = 2_000
/** Paths one check may ask about (a commit's staged paths). */
export const MAX_CHECK_PATHS = 10_000
