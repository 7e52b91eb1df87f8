/** Shared state, memory and tasks: protocol ids, topics and limits (SPEC.md §11, §14, §15). */

export const crdtTopic = (meshId: string): string => `/claudemesh/${meshId}/crdt/1`
export const crdtSyncProtocol = (meshId: string): string => `/claudemesh/${meshId}/crdt-sync/1.0.0`
/** Settle pulls on a long-lived stream per peer (§11.4 "Settle"). */
export const crdtSettleProtocol = (meshId: string): string => `/claudemesh/${meshId}/crdt-settle/1.0.0`

export const UPDATE_SIGN_CONTEXT = 'claudemesh/crdt/v1\0'

/** The root maps a signed update may touch. */
export const ROOTS = ['state', 'memory', 'tasks', 'context', 'reservations'] as const
export type Root = (typeof ROOTS)[number]

/** Largest Yjs update inside one envelope. */
export const MAX_UPDATE_BYTES = 256 * 1024
/** Largest envelope on the wire. */
export const MAX_ENVELOPE_BYTES = MAX_UPDATE_BYTES + 1024
/** Largest JSON value of one state entry or memory note, encoded. */
export const MAX_VALUE_BYTES = 64 * 1024
/** Deepest nesting of a value. */
export const MAX_VALUE_DEPTH = 16
/**
 * Deepest value a local writer may set (CLI `state set`, MCP `set_state`, control `state.set`):
 * the stored wrapper `{v, by, at}` adds one level, and peers refuse more than MAX_VALUE_DEPTH.
 */
export const MAX_SET_DEPTH = MAX_VALUE_DEPTH - 1
/** Longest state key. */
export const MAX_KEY_LENGTH = 256
/** A memory note's content, as JSON (UTF-8 bytes), and its tags (§11.6). */
export const MAX_NOTE_BYTES = 16 * 1024
export const MAX_TAGS = 16
export const MAX_TAG_LENGTH = 64
/** A context hand-off (§17): summary bytes (as JSON), files and decisions. */
export const MAX_CONTEXT_SUMMARY_BYTES = 16 * 1024
export const MAX_CONTEXT_FILES = 64
export const MAX_CONTEXT_FILE_CHARS = 1024
export const MAX_CONTEXT_DECISIONS = 32
export const MAX_CONTEXT_DECISION_CHARS = 2048
/** Longest PeerId string a value may name in `by` or `author`. */
export const MAX_PEER_ID_LENGTH = 128
/**
 * Updates that cannot be placed yet (an origin or an earlier clock of their author is not held)
 * wait in memory, at most this many and this many bytes; past that the oldest is dropped (it is
 * not in the version vector, so a pull brings it again).
 */
export const MAX_DEFERRED = 1024
export const MAX_DEFERRED_BYTES = 16 * 1024 * 1024
/** Most envelopes one sync answer carries; the rest come in the next round. */
export const SYNC_BATCH = 5000
/** Write a snapshot of the merged document after this many new envelopes (at least)… */
export const SNAPSHOT_EVERY = 1000
/** …and at most: a start-up replays no more than this many envelopes after its snapshot. */
export const SNAPSHOT_MAX = 5000
/**
 * Anti-entropy with one random peer this often (plus on every new connection and after a gap).
 * A lost update whose author writes nothing after it leaves no gap to notice: this bounds how
 * long such a loss lasts. One pull is a version vector and an empty answer when in sync.
 */
export const SYNC_INTERVAL_MS = 5_000
