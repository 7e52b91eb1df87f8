/**
 * The peer table: what this node believes about every peer it has heard of, and the state
 * machine that turns verified records and connection changes into `peer:join`,
 * `peer:update` and `peer:leave` without flapping (SPEC.md §6.3). Pure: no network, no
 * disk, time passed in, so tests drive it with fake timers.
 */
import type { PresenceTimings } from './constants.js'
import type { PresenceBody, SignedRecord } from './record.js'

export type PeerState = 'online' | 'suspect' | 'offline'

export interface PeerEntry {
  id: string
  record: SignedRecord
  /** the record exactly as signed, to hand on to peers that connect later */
  bytes: Uint8Array
  /** SHA-256 of `bytes`, for a record accepted in this run: a copy of it is known at once (presence.ts) */
  digest?: string
  body?: PresenceBody
  /** local time the newest record was accepted */
  lastSeen: number
  state: PeerState
  /** set while a lost direct connection's grace runs */
  lostAt?: number
  /** loaded from disk and not heard from since this node started */
  restored?: boolean
  /** the presence table's version when this record was taken (presence.ts: what an exchange has not sent yet) */
  version?: number
}

/** What the public API shows of a peer. */
export interface PeerInfo {
  id: string
  name: string
  role: string
  groups: Array<{ name: string; role?: string }>
  status: string
  summary: string
  cwd: string
  host: string
  online: boolean
  lastSeen: number
  incarnation: number
  addrs: string[]
  self: boolean
  /** what `send` needs to reach this peer: its name, or `name#<id suffix>` when the name is shared or shadowed (SPEC.md §8.6); set by `MeshNode.peers()` */
  handle?: string
  /** its file reservations that count now (SPEC.md §15.5); set by `MeshNode.peers()` when it has any */
  reservations?: Array<{ repo: string; branch: string; globs: string[]; mode: 'exclusive' | 'shared'; reason: string; expiresAt: number }>
}

export type Verdict = 'stale' | 'join' | 'update' | 'leave' | 'quiet'

export function peerInfo(e: PeerEntry, self = false): PeerInfo {
  const b = e.body
  return {
    id: e.id,
    name: b?.name ?? '',
    role: b?.role ?? '',
    groups: b?.groups ?? [],
    status: b?.status ?? 'idle',
    summary: b?.summary ?? '',
    cwd: b?.cwd ?? '',
    host: b?.host ?? '',
    online: self || e.state !== 'offline',
    lastSeen: e.lastSeen,
    incarnation: e.record.inc,
    addrs: e.record.addrs,
    self
  }
}

/** (inc, seq) ordering: a record supersedes another only if it is strictly newer. */
export function newer(a: SignedRecord, b: SignedRecord): boolean {
  return a.inc > b.inc || (a.inc === b.inc && a.seq > b.seq)
}

/**
 * Apply a verified record. Returns what changed, so the caller emits the right event.
 * A record older than the TTL updates "last seen" facts but never brings a peer online:
 * that is what keeps a replayed old record from raising a ghost.
 */
export function applyRecord(existing: PeerEntry | undefined, next: PeerEntry, now: number, t: PresenceTimings): Verdict {
  const fresh = !next.record.gone && now - next.record.at < t.ttlMs + t.maxClockSkewMs
  if (existing != null && !newer(next.record, existing.record)) {
    // the very record we remembered from an earlier run, forwarded while still fresh, is the
    // first news of this peer in this run; anything else not newer is a duplicate or replay
    const same = next.record.inc === existing.record.inc && next.record.seq === existing.record.seq
    if (!(same && existing.restored === true && fresh)) return 'stale'
  }
  const was = existing?.state ?? 'offline'
  next.state = fresh ? 'online' : 'offline'
  if (next.record.gone || !fresh) return was === 'offline' ? 'quiet' : 'leave'
  if (was === 'offline') return 'join'
  const changed =
    existing == null ||
    was === 'suspect' ||
    existing.record.inc !== next.record.inc ||
    JSON.stringify(existing.body) !== JSON.stringify(next.body) ||
    existing.record.addrs.join() !== next.record.addrs.join()
  return changed ? 'update' : 'quiet'
}

/** Has an online peer gone quiet for longer than the TTL, or out-lived its grace? */
export function expired(e: PeerEntry, now: number, t: PresenceTimings): boolean {
  if (e.state === 'offline') return false
  if (now - e.lastSeen >= t.ttlMs) return true
  return e.lostAt != null && now - e.lostAt >= t.graceMs && e.lastSeen <= e.lostAt
}
