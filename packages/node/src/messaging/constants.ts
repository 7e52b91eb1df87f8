/** Messaging protocol ids, topics and limits (SPEC.md §8, §9). */

export const dmProtocol = (meshId: string): string => `/claudemesh/${meshId}/dm/1.0.0`
export const groupSyncProtocol = (meshId: string): string => `/claudemesh/${meshId}/group-sync/1.0.0`

/** Largest message body, in UTF-8 bytes. */
export const MAX_BODY_BYTES = 64 * 1024
/** Largest envelope on the wire: body, header, AEAD tag and CBOR overhead. */
export const MAX_ENVELOPE_BYTES = MAX_BODY_BYTES + 2048
/** Largest frame on a DM stream (an envelope, or a batch of acks). */
export const MAX_DM_FRAME_BYTES = MAX_ENVELOPE_BYTES + 1024
/** Most ids in one ack or read frame. */
export const MAX_ACK_IDS = 1024
/** The longest "retry after" a refusal (`x` frame) may ask for: a sender waits at most this. */
export const MAX_RETRY_AFTER_MS = 3_600_000

/** A message not acked within this time fails (and its id stops being remembered). */
export const DEFAULT_TTL_MS = 7 * 24 * 3600_000
/** Envelopes dated further ahead than this are refused. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000

/** Retry backoff for unacknowledged DMs. */
export const RETRY_MIN_MS = 250
export const RETRY_MAX_MS = 30_000

/** Group history each node keeps for members that return (SPEC.md §9.4). */
export const GROUP_HISTORY_MS = 24 * 3600_000
/** Most envelopes one group-sync answer carries. */
export const GROUP_SYNC_MAX = 1000
/** how often (jittered ±50 %) a node asks one peer of its groups for what gossip did not bring it */
export const GROUP_RESYNC_MS = 15_000
/** how far back such a periodic sync looks: gossip loses messages now, not hours ago */
export const GROUP_RESYNC_WINDOW_MS = 10 * 60_000

export const PRIORITIES = ['now', 'next', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

/** How a session takes peer messages (SPEC.md §13.2). */
export const MESSAGE_MODES = ['push', 'inbox', 'off'] as const
export type MessageMode = (typeof MESSAGE_MODES)[number]

export const GROUP_SIGN_CONTEXT = 'claudemesh/group/v1\0'

/* The outbound DM channel (channel.ts, SPEC.md §8.3, §8.8). */
/** How many unacked messages a channel keeps in flight. */
export const WINDOW = 4096
/**
 * After a refusal (`x` frame) a channel keeps at most this many in flight to that peer for
 * `REFUSED_SLOW_MS`: a recipient holds more than this in one later episode against it.
 */
export const REFUSED_WINDOW = 64
export const REFUSED_SLOW_MS = 60_000
/** An open stream with unacked messages and no ack for this long is presumed dead. */
export const ACK_TIMEOUT_MS = 15_000
