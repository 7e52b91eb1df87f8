/** Presence protocol ids, topics, timings and limits (SPEC.md §6). */

export const presenceTopic = (meshId: string): string => `/claudemesh/${meshId}/presence/1`
export const presenceProtocol = (meshId: string): string => `/claudemesh/${meshId}/presence/1.0.0`

/** Domain separation for presence signatures; the mesh id follows it in the signed bytes. */
export const PRESENCE_SIGN_CONTEXT = 'claudemesh/presence/v1\0'

/** Largest encoded signed record: any body within LIMITS fits, even in 4-byte UTF-8. */
export const MAX_RECORD_BYTES = 32 * 1024
/** Most records one exchange stream may carry before it is cut. */
export const MAX_EXCHANGE_RECORDS = 1024
/** First byte of an exchange's summary frame: no record (a CBOR map) starts with it. */
export const SUMMARY_TAG = 0x00
/** Largest sync summary an exchange carries (a larger one is left out: the peer pulls as if it had none). */
export const MAX_SUMMARY_BYTES = 64 * 1024
/** Accepted records are written to the store this long after the first unsaved one, in one batch (and at stop). */
export const SAVE_DELAY_MS = 2_000
/** Most peers remembered; beyond it the longest-offline are forgotten. */
export const MAX_KNOWN_PEERS = 4096

export const LIMITS = {
  name: 64,
  role: 64,
  groups: 32,
  groupName: 64,
  summary: 1024,
  cwd: 1024,
  host: 255,
  addrs: 16,
  addr: 256
} as const

export const DEFAULT_TIMINGS = {
  /** republish our record this often */
  heartbeatMs: 10_000,
  /** a peer with no record for this long is gone */
  ttlMs: 30_000,
  /** after the last connection to a peer closes, wait this long for it to reappear */
  graceMs: 12_000,
  /** a record dated further than this into the future is refused */
  maxClockSkewMs: 120_000
}
export type PresenceTimings = typeof DEFAULT_TIMINGS

/**
 * Every heartbeat costs each member a signature check per online peer: N² checks (and N·D
 * gossip sends) per round. Past this many online peers, heartbeat, TTL and grace all stretch
 * by online / HEARTBEAT_SCALE_FROM (their ratios stay: three heartbeats per TTL, one within
 * the grace), so a member's presence work per second stops growing with the mesh (§6.3).
 */
export const HEARTBEAT_SCALE_FROM = 20
/** The stretch stops here (a mesh of 120 peers or more: heartbeat 60 s, TTL 3 min, grace 72 s). */
export const HEARTBEAT_MAX_SCALE = 6

/** The timings in force with `online` peers online (SPEC.md §6.3, scaled timings). */
export function scaledTimings(t: PresenceTimings, online: number): PresenceTimings {
  const f = Math.min(HEARTBEAT_MAX_SCALE, Math.max(1, online / HEARTBEAT_SCALE_FROM))
  if (f === 1) return t
  return { ...t, heartbeatMs: t.heartbeatMs * f, ttlMs: t.ttlMs * f, graceMs: t.graceMs * f }
}

/** Group names are what `@name` can address (SPEC.md §8.6). */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export const STATUSES = ['idle', 'working', 'dnd'] as const
export type PresenceStatus = (typeof STATUSES)[number]
