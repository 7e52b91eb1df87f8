/**
 * One replica of the mesh's shared document (SPEC.md §11.2): a Yjs doc with `state` and
 * `memory` maps, the signed envelopes it was built from, and a version vector (per author
 * stream, the highest sequence held without a gap). Pure: no network; its log may be in
 * memory (tests) or LevelDB. Peers converge by pulling what their vector says they lack.
 */
import * as Y from 'yjs'
import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { Ed25519PrivateKey } from '../identity/keys.js'
import * as c from './constants.js'
import { checkStructs, clientIdOf, decodeUpdateEnvelope, openUpdate, openVerified, signUpdate, type UpdateEnvelope } from './envelope.js'
import { LeanDecoderV1 } from './lean-decoder.js'
import type { EnvelopeLog } from './log.js'
import { placeUpdate } from './placement.js'
import { type Candidate, WaitingRoom } from './waiting.js'

const log = logger('claudemesh:crdt')

export type VersionVector = Record<string, number>
export type IngestResult = 'applied' | 'duplicate' | 'deferred' | 'rejected'
export interface Origin {
  author: string
  local: boolean
}
/** A refused update: `author` when the envelope was a member's (signature and seal held). */
export interface CrdtReject {
  reason: string
  author?: string
}
export interface ReplicaEvents {
  'crdt:reject': CustomEvent<CrdtReject>
}

export class Replica extends TypedEventEmitter<ReplicaEvents> {
  private current = new Y.Doc({ gc: true })
  /** `skipped`: logged envelopes that no longer open or decode at load (never fatal) */
  readonly stats = { applied: 0, duplicates: 0, rejected: 0, deferred: 0, skipped: 0 }
  /** why the stored snapshot was not used at load (it was rebuilt from the whole log), when it was not */
  snapshotIgnored?: string
  /** per author stream: highest contiguous sequence held */
  private readonly vv = new Map<string, number>()
  /** sequences held beyond a gap, per stream */
  private readonly ahead = new Map<string, Set<number>>()
  /** updates waiting for an origin or an earlier clock of their author */
  private readonly waiting = new WaitingRoom()
  /** `<stream>!<seq>` being applied: held already, though not noted until its write is durable */
  private readonly applying = new Set<string>()
  /** this node's own changes signed and not yet in the log, by sequence: a pull is answered with them (SPEC §11.4) */
  private readonly unlogged = new Map<number, Uint8Array>()
  private retrying = false
  private seq = 0
  private readonly selfStream: string
  private sinceSnapshot = 0
  /** a stream got a gap: someone should pull from the sender soon */
  onGap?: (stream: string) => void

  constructor(
    private readonly meshId: string,
    private readonly key: Ed25519PrivateKey,
    private readonly sealKey: Uint8Array,
    readonly incarnation: number,
    readonly store: EnvelopeLog,
    readonly selfId: string
  ) {
    super()
    this.current.clientID = clientIdOf(key.publicKey.raw, incarnation)
    this.selfStream = streamOf(key.publicKey.raw, incarnation)
  }

  /** The document: replaced only inside `load` (a snapshot that fails half-way leaves a fresh one), so take it after that. */
  get doc(): Y.Doc {
    return this.current
  }

  /** Updates waiting to be placed. */
  get deferred(): number {
    return this.waiting.size
  }

  /**
   * Rebuild from the snapshot and the envelopes that arrived after it (verified when they
   * came). An envelope that no longer decodes or opens is skipped and counted: a bad record
   * must not stop a node from starting. A snapshot that does not read, does not match its
   * checksum, does not decode or leaves the document incomplete is ignored with a warning, and
   * the document is rebuilt from the whole log (envelopes are never deleted: SPEC.md §11.3).
   * Values are checked by their readers (schema.ts).
   */
  async load(): Promise<void> {
    let from = 0
    try {
      const snap = await this.store.snapshot()
      if (snap != null) {
        if (snap.arrival > this.store.arrivals())
          throw new Error(`it includes ${snap.arrival} envelopes, the log has ${this.store.arrivals()}`)
        Y.applyUpdateV2(this.doc, snap.update, { author: '', local: false } satisfies Origin, LeanDecoderV1)
        if (this.doc.store.pendingStructs != null || this.doc.store.pendingDs != null) throw new Error('its update is incomplete')
        for (const [s, n] of Object.entries(snap.vv)) this.vv.set(s, n)
        from = snap.arrival
        // where an older version kept it: the next clean stop writes it where this one does (SPEC.md §11.3)
        if (snap.stale === true) this.sinceSnapshot = 1
      }
    } catch (err) {
      this.snapshotIgnored = (err as Error).message
      warn(`the stored crdt snapshot is unusable (${this.snapshotIgnored}): rebuilding the document from the update log`)
      const fresh = new Y.Doc({ gc: true })
      fresh.clientID = this.current.clientID
      this.current.destroy()
      this.current = fresh
      this.vv.clear()
      // the next clean stop writes a good one
      this.sinceSnapshot = 1
    }
    const updates: Uint8Array[] = []
    for await (const bytes of this.store.since(from)) {
      try {
        const e = decodeUpdateEnvelope(bytes)
        updates.push(openUpdate(this.sealKey, e))
        this.note(streamOf(e.author, e.inc), e.seq)
      } catch (err) {
        this.stats.skipped++
        log('skipped a logged crdt update: %s', (err as Error).message)
      }
    }
    // one transaction, update by update: Y.mergeUpdates is superlinear (17 s for 30k updates
    // here, against 0.15 s applied one by one)
    const origin: Origin = { author: '', local: false }
    this.doc.transact(() => {
      for (const u of updates) Y.applyUpdateV2(this.doc, u, origin, LeanDecoderV1)
    }, origin)
  }

  versionVector(): VersionVector {
    return Object.fromEntries(this.vv)
  }

  /**
   * The vector a pull asks with: this node's own changes count as held from the moment they are
   * signed (they are in the document), so a peer that got one by gossip before it was logged here
   * does not send it back.
   */
  pullVector(): VersionVector {
    const vv = this.versionVector()
    if (this.seq > (vv[this.selfStream] ?? 0)) vv[this.selfStream] = this.seq
    return vv
  }

  /**
   * Make a local change; resolves with the signed envelope once it is in the log. `signed`, if
   * given, gets the envelope as soon as it is signed, while it is being made durable (a claim
   * starts its settle pulls then, SPEC.md §14.4).
   */
  async change(fn: (doc: Y.Doc) => void, signed?: (envelope: Uint8Array) => void): Promise<Uint8Array | undefined> {
    let update: Uint8Array | undefined
    const capture = (u: Uint8Array, origin: unknown): void => {
      if ((origin as Origin | undefined)?.local === true) update = u
    }
    this.doc.on('update', capture)
    try {
      this.doc.transact(
        () => {
          fn(this.doc)
        },
        { author: this.selfId, local: true } satisfies Origin
      )
    } finally {
      this.doc.off('update', capture)
    }
    if (update == null) return undefined
    const seq = ++this.seq
    // held from here: a copy that comes back (gossip, a pull) before the write lands is a duplicate
    const id = `${this.selfStream}!${seq}`
    let bytes: Uint8Array
    this.applying.add(id)
    try {
      bytes = await signUpdate(this.meshId, this.key, this.sealKey, this.incarnation, seq, update)
      // served to pulls from here: a claim's settle pulls start now (`signed`), and a rival that
      // pulls from us after our pull reached it must see this claim (SPEC §11.4, §14.4)
      this.unlogged.set(seq, bytes)
      // the write is queued before `signed` sets off more work
      const appended = this.store.append(this.selfStream, seq, bytes)
      signed?.(bytes)
      await appended
      this.note(this.selfStream, seq)
    } finally {
      this.applying.delete(id)
      this.unlogged.delete(seq)
    }
    await this.maybeSnapshot()
    return bytes
  }

  /**
   * The one door for remote updates: duplicate check, signature and seal, item shapes, then
   * where each item lands and its value's schema (placement.ts), all before the document is
   * touched. A refused update is counted and announced, never thrown.
   */
  async ingest(bytes: Uint8Array, inDoc?: () => void): Promise<IngestResult> {
    let e: UpdateEnvelope
    let opened: { author: string; update: Uint8Array }
    try {
      e = decodeUpdateEnvelope(bytes)
      if (this.holds(streamOf(e.author, e.inc), e.seq)) return this.duplicate()
      opened = await openVerified(this.meshId, this.sealKey, e)
    } catch (err) {
      return this.refuse((err as Error).message)
    }
    const stream = streamOf(e.author, e.inc)
    if (this.holds(stream, e.seq)) return this.duplicate()
    const client = clientIdOf(e.author, e.inc)
    let structs: Y.Item[]
    try {
      structs = checkStructs(opened.update, client, opened.author)
    } catch (err) {
      return this.refuse((err as Error).message, stream, e.seq, opened.author)
    }
    return await this.admit({ stream, seq: e.seq, bytes, author: opened.author, update: opened.update, structs, client }, inDoc)
  }

  /** `inDoc`: told once the update is in the document, before its log write is durable. */
  private async admit(u: Candidate, inDoc?: () => void): Promise<IngestResult> {
    const placed = placeUpdate(this.doc, u.structs, u.client, (this.vv.get(u.stream) ?? 0) >= u.seq - 1)
    if (placed.kind === 'wait') {
      this.stats.deferred++
      this.waiting.add({ ...u, wait: { client: placed.client, clock: placed.clock } })
      return 'deferred'
    }
    if (placed.kind === 'refuse') return this.refuse(placed.reason, u.stream, u.seq, u.author)
    const id = `${u.stream}!${u.seq}`
    this.applying.add(id)
    try {
      Y.applyUpdate(this.doc, u.update, { author: u.author, local: false } satisfies Origin)
      inDoc?.()
      await this.store.append(u.stream, u.seq, u.bytes)
    } finally {
      this.applying.delete(id)
    }
    const gap = this.note(u.stream, u.seq)
    this.stats.applied++
    if (gap) this.onGap?.(u.stream)
    await this.maybeSnapshot()
    await this.retryWaiting()
    return 'applied'
  }

  /** Try again the waiting updates whose dependency is now held (or can no longer come). */
  private async retryWaiting(): Promise<void> {
    if (this.retrying) return
    this.retrying = true
    try {
      const ready = (w: { stream: string; seq: number; client: number; wait: { client: number; clock: number } }): boolean =>
        Y.getState(this.doc.store, w.wait.client) > w.wait.clock ||
        (w.wait.client === w.client && (this.vv.get(w.stream) ?? 0) >= w.seq - 1)
      for (let w = this.waiting.take(ready); w != null; w = this.waiting.take(ready)) {
        // one that fails (a store error) is dropped: not in the vector, a pull brings it again
        if (!this.holds(w.stream, w.seq))
          await this.admit(w).catch(err => {
            log('a waiting crdt update failed: %s', (err as Error).message)
          })
      }
    } finally {
      this.retrying = false
    }
  }

  private duplicate(): IngestResult {
    this.stats.duplicates++
    return 'duplicate'
  }

  /**
   * Count, log and announce a refusal. A member's refused update (signature and seal held) is
   * noted as held: its verdict is the same everywhere, so nobody need send it again, and the
   * author's later updates, whose clocks follow it, are refused in turn (placement.ts).
   */
  private refuse(reason: string, stream?: string, seq?: number, author?: string): IngestResult {
    this.stats.rejected++
    log('refused a crdt update%s: %s', author != null ? ` by ${author}` : '', reason)
    if (stream != null && seq != null && this.note(stream, seq)) this.onGap?.(stream)
    this.safeDispatchEvent('crdt:reject', { detail: author != null ? { reason, author } : { reason } })
    if (stream != null) this.retryWaiting().catch(() => {}) // it logs its own failures
    return 'rejected'
  }

  /** Envelopes a peer with vector `theirs` lacks, at most `limit`. */
  async missing(theirs: VersionVector, limit = c.SYNC_BATCH): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    const streams = new Set([...this.vv.keys(), ...this.ahead.keys()])
    for (const s of streams) {
      const have = theirs[s] ?? 0
      if ((this.vv.get(s) ?? 0) <= have && !this.ahead.get(s)?.size) continue
      for await (const b of this.store.range(s, have, limit - out.length)) out.push(b)
      if (out.length >= limit) break
    }
    // own changes still being written: after the logged ones, in sequence order
    const own = Math.max(theirs[this.selfStream] ?? 0, this.vv.get(this.selfStream) ?? 0)
    for (const [seq, b] of this.unlogged) if (seq > own && out.length < limit) out.push(b)
    return out
  }

  /** Held, being applied, or waiting: another copy is a duplicate. */
  private holds(stream: string, seq: number): boolean {
    return (
      seq <= (this.vv.get(stream) ?? 0) ||
      this.ahead.get(stream)?.has(seq) === true ||
      this.applying.has(`${stream}!${seq}`) ||
      this.waiting.has(stream, seq)
    )
  }

  /** Record that we hold `seq` of `stream`; true when it leaves a gap behind it. */
  private note(stream: string, seq: number): boolean {
    const top = this.vv.get(stream) ?? 0
    if (seq <= top) return false
    if (seq !== top + 1) {
      let a = this.ahead.get(stream)
      if (a == null) this.ahead.set(stream, (a = new Set()))
      a.add(seq)
      return true
    }
    let next = seq
    const a = this.ahead.get(stream)
    while (a?.delete(next + 1) === true) next++
    if (a?.size === 0) this.ahead.delete(stream)
    this.vv.set(stream, next)
    return false
  }

  /**
   * A snapshot re-encodes the whole document, so its cost grows with the document: take one
   * after SNAPSHOT_EVERY envelopes, or a tenth of the log's size when that is more, up to
   * SNAPSHOT_MAX (what a start-up may have to replay on top of the snapshot). A clean stop
   * saves one, so a restart replays nothing.
   */
  private async maybeSnapshot(): Promise<void> {
    if (++this.sinceSnapshot < Math.min(Math.max(c.SNAPSHOT_EVERY, this.store.arrivals() / 10), c.SNAPSHOT_MAX)) return
    await this.snapshot()
  }

  async snapshot(): Promise<void> {
    if (this.sinceSnapshot === 0) return
    this.sinceSnapshot = 0
    await this.store.saveSnapshot({ update: Y.encodeStateAsUpdate(this.doc), arrival: this.store.arrivals(), vv: this.versionVector() })
  }
}

/** A problem the operator should see even without DEBUG: on stderr (stdout is the MCP channel), and in the debug log. */
function warn(msg: string): void {
  log.error(msg)
  process.stderr.write(`claudemesh: ${msg}\n`)
}

export function streamOf(author: Uint8Array, inc: number): string {
  return `${Buffer.from(author).toString('hex')}.${inc.toString(16)}`
}
