/**
 * File reservations (SPEC.md §15) on the replica's `reservations` map: each session keeps its
 * list of reservations (globs in a repository and branch, exclusive or shared, with a reason and
 * an end) under its own PeerId. What counts is a pure function of the entries, the reader's
 * clock and its presence view: a reservation counts while it has not ended and its holder is not
 * offline, and of two overlapping ones the earlier stands (rule.ts).
 */
import { TypedEventEmitter } from 'main-event'
import type * as Y from 'yjs'
import { InvalidMessageError, ReservationConflictError } from '../errors.js'
import { CheckedMap } from '../state/checked.js'
import { MAX_VALUE_BYTES } from '../state/constants.js'
import type { Origin, Replica } from '../state/replica.js'
import type { StoredReservationItem, StoredReservations } from '../state/reservation-schema.js'
import * as c from './constants.js'
import { checkGlobs, overlaps } from './globs.js'
import type { RepoRef } from './repo.js'
import { blockersOf, inRepo, type Reservation } from './rule.js'

export interface ReserveInput {
  globs: string[]
  mode?: c.ReservationMode
  ttlMs?: number
  reason?: string
}
export interface ReservationChange {
  holder: string
  local: boolean
}
export interface ReservationEvents {
  'reservation:change': CustomEvent<ReservationChange>
}
export interface ReservationOptions {
  now?: () => number
  /** true when presence knows `peer` to be offline: its reservations no longer count */
  offline?: (peer: string) => boolean
}

export class ReservationBoard extends TypedEventEmitter<ReservationEvents> {
  private readonly map: Y.Map<StoredReservations>
  private readonly checked: CheckedMap<StoredReservations>
  private readonly now: () => number
  private readonly offline: (peer: string) => boolean

  constructor(
    private readonly replica: Replica,
    private readonly publish: (envelope: Uint8Array) => void,
    opts: ReservationOptions = {}
  ) {
    super()
    this.map = replica.doc.getMap('reservations')
    this.checked = new CheckedMap(this.map as Y.Map<unknown>, 'reservations')
    this.now = opts.now ?? Date.now
    this.offline = opts.offline ?? (() => false)
    this.map.observe((evt, tr) => {
      const local = (tr.origin as Origin | undefined)?.local === true
      for (const holder of evt.keysChanged) this.safeDispatchEvent('reservation:change', { detail: { holder, local } })
    })
  }

  get self(): string {
    return this.replica.selfId
  }
  get skipped(): number {
    return this.checked.skipped
  }

  /** Reserve globs of `where`; refused, with nothing written, when another live holder's reservation conflicts. */
  async reserve(where: RepoRef, input: ReserveInput, name: string): Promise<Reservation> {
    const globs = checkGlobs(input.globs)
    const mode = input.mode ?? 'exclusive'
    const ttl = input.ttlMs ?? c.DEFAULT_RESERVATION_MS
    if (!Number.isInteger(ttl) || ttl < c.MIN_RESERVATION_MS || ttl > c.MAX_RESERVATION_MS)
      throw new InvalidMessageError(`a reservation lasts ${c.MIN_RESERVATION_MS / 1000} s to ${c.MAX_RESERVATION_MS / 3600_000} h`)
    const reason = String(input.reason ?? '').trim()
    if (reason.length > c.MAX_REASON_LENGTH) throw new InvalidMessageError(`a reason is at most ${c.MAX_REASON_LENGTH} characters`)
    if (where.repo.length > c.MAX_REPO_LENGTH || where.branch.length > c.MAX_BRANCH_LENGTH)
      throw new InvalidMessageError("this repository's identity or branch name is too long to reserve in")
    const clash = this.conflicts(where, globs, mode)[0]
    if (clash != null) throw new ReservationConflictError(clashText(clash.other, clash.glob))
    const now = this.now()
    const item: StoredReservationItem = { repo: where.repo, branch: where.branch, globs, mode, reason, since: now, exp: now + ttl }
    // the same globs reserved again replace the old ones (a renewal, or a change of mode)
    const kept = this.mine()
      .map(i => (sameRepo(i, where) ? { ...i, globs: i.globs.filter(g => !globs.includes(g)) } : i))
      .filter(i => i.globs.length > 0)
    const list = [...kept, item]
    if (list.length > c.MAX_RESERVATIONS)
      throw new InvalidMessageError(`a session holds at most ${c.MAX_RESERVATIONS} reservations; release some first`)
    await this.write(list, name)
    return this.view(this.self, item, name)
  }

  /** Let go of globs in `where` (all of its globs without `globs`), or of everything without `where`. Returns how many globs went. */
  async release(where: RepoRef | undefined, globs: string[] | undefined, name: string): Promise<number> {
    const drop = globs == null ? undefined : checkGlobs(globs)
    const before = this.mine()
    const after = before
      .map(i => (where != null && !sameRepo(i, where) ? i : { ...i, globs: drop == null ? [] : i.globs.filter(g => !drop.includes(g)) }))
      .filter(i => i.globs.length > 0)
    const count = (l: StoredReservationItem[]): number => l.reduce((n, i) => n + i.globs.length, 0)
    const released = count(before) - count(after)
    if (released > 0 || before.length !== after.length) await this.write(after, name)
    return released
  }

  /** Every reservation that counts now, holder by holder, oldest first. */
  live(): Reservation[] {
    const now = this.now()
    const out: Reservation[] = []
    for (const [holder, entry] of this.checked.entries()) {
      if (holder !== this.self && this.offline(holder)) continue
      for (const i of entry.list) if (i.exp > now) out.push(this.view(holder, i, entry.name))
    }
    return out.sort((a, b) => a.since - b.since || (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0))
  }

  forPeer(peer: string): Reservation[] {
    return this.live().filter(r => r.holder === peer)
  }

  /** Reservations of other live holders that conflict with reserving `globs` in `mode` at `where`. */
  conflicts(where: RepoRef, globs: string[], mode: c.ReservationMode): Array<{ other: Reservation; glob: string }> {
    const out: Array<{ other: Reservation; glob: string }> = []
    for (const r of this.live()) {
      if (r.holder === this.self || !sameRepo(r, where) || (r.mode === 'shared' && mode === 'shared')) continue
      const glob = globs.find(g => r.globs.some(h => overlaps(g, h)))
      if (glob != null) out.push({ other: r, glob })
    }
    return out
  }

  /** The reservations that stop `viewer` (null: nobody in particular) from changing the file `abs` in `where`; `live` lets a caller checking many files fold the map once. */
  blockers(where: RepoRef, abs: string, viewer: string | null, live: Reservation[] = this.live()): Reservation[] {
    return blockersOf(
      live.filter(r => inRepo(r, where, abs) != null),
      where,
      abs,
      viewer
    )
  }

  private mine(): StoredReservationItem[] {
    const now = this.now()
    // ended reservations are dropped whenever the holder writes again
    return (this.checked.get(this.self)?.list ?? []).filter(i => i.exp > now)
  }

  private async write(list: StoredReservationItem[], name: string): Promise<void> {
    const entry: StoredReservations = { list, name: name.slice(0, 64), by: this.self, at: this.now() }
    if (Buffer.byteLength(JSON.stringify(entry)) > MAX_VALUE_BYTES)
      throw new InvalidMessageError(`a session's reservations are at most ${MAX_VALUE_BYTES} bytes; release some first`)
    const env = await this.replica.change(() => {
      this.map.set(this.self, entry)
    })
    if (env != null) this.publish(env)
  }

  private view(holder: string, i: StoredReservationItem, name: string): Reservation {
    return {
      holder,
      name,
      repo: i.repo,
      branch: i.branch,
      globs: i.globs,
      mode: i.mode,
      reason: i.reason,
      since: i.since,
      expiresAt: i.exp,
      self: holder === this.self
    }
  }
}

function sameRepo(a: { repo: string; branch: string }, b: { repo: string; branch: string }): boolean {
  return a.repo === b.repo && a.branch === b.branch
}

function clashText(r: Reservation, glob: string): string {
  const who = `"${r.name.slice(0, 64)}" (${r.holder.slice(-10)})`
  return `"${glob}" overlaps ${r.globs.join(', ').slice(0, 300)}, reserved ${r.mode === 'exclusive' ? 'exclusively ' : ''}by ${who} until ${new Date(r.expiresAt).toISOString()}${r.reason !== '' ? `: ${r.reason.slice(0, 200)}` : ''}`
}
