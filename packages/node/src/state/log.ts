/**
 * Where a replica keeps the signed envelopes it has accepted, by author stream and sequence,
 * so it can hand peers what they lack. `MemoryLog` serves the convergence tests;
 * `LevelLog` persists (SPEC.md §11.3):
 *   e!<stream>!<seq:12>   → envelope bytes
 *   l!<arrival:12>        → "<stream>!<seq:12>" (arrival order, replayed after the snapshot)
 *   s!snapshot            → CBOR {update, arrival, vv}: the merged document at some arrival
 */
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import type { BatchOp, GroupCommit } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import { z } from 'zod'

export interface Snapshot { update: Uint8Array, arrival: number, vv: Record<string, number> }

export interface EnvelopeLog {
  append: (stream: string, seq: number, bytes: Uint8Array) => Promise<void>
  range: (stream: string, afterSeq: number, limit: number) => AsyncIterable<Uint8Array>
  /** envelopes that arrived after `arrival`, in order */
  since: (arrival: number) => AsyncIterable<Uint8Array>
  snapshot: () => Promise<Snapshot | undefined>
  saveSnapshot: (s: Snapshot) => Promise<void>
  arrivals: () => number
}

const pad = (n: number): string => String(n).padStart(12, '0')

export class MemoryLog implements EnvelopeLog {
  private readonly byStream = new Map<string, Map<number, Uint8Array>>()
  private readonly order: Uint8Array[] = []
  private snap?: Snapshot

  async append (stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    let m = this.byStream.get(stream)
    if (m == null) this.byStream.set(stream, m = new Map())
    m.set(seq, bytes)
    this.order.push(bytes)
  }

  async * range (stream: string, afterSeq: number, limit: number): AsyncIterable<Uint8Array> {
    const m = this.byStream.get(stream)
    if (m == null) return
    let n = 0
    for (const seq of [...m.keys()].filter(s => s > afterSeq).sort((a, b) => a - b)) {
      if (n++ >= limit) return
      yield m.get(seq) as Uint8Array
    }
  }

  async * since (arrival: number): AsyncIterable<Uint8Array> {
    yield * this.order.slice(arrival)
  }

  async snapshot (): Promise<Snapshot | undefined> { return this.snap }
  async saveSnapshot (s: Snapshot): Promise<void> { this.snap = s }
  arrivals (): number { return this.order.length }
}

const SnapshotSchema = z.object({ update: zBytes(), arrival: z.number().int(), vv: z.record(z.string(), z.number()) })

export class LevelLog implements EnvelopeLog {
  private count = 0

  constructor (private readonly db: Sublevel, private readonly commit: GroupCommit) {}

  async open (): Promise<void> {
    for await (const k of this.db.keys({ gte: 'l!', lt: 'l"', reverse: true, limit: 1 })) this.count = Number(k.slice(2))
  }

  async append (stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    const key = `${stream}!${pad(seq)}`
    this.count++
    await this.commit.write([
      { type: 'put', sublevel: this.db, key: `e!${key}`, value: bytes },
      { type: 'put', sublevel: this.db, key: `l!${pad(this.count)}`, value: new TextEncoder().encode(key) }
    ] as BatchOp[])
  }

  async * range (stream: string, afterSeq: number, limit: number): AsyncIterable<Uint8Array> {
    yield * this.db.values({ gt: `e!${stream}!${pad(afterSeq)}`, lt: `e!${stream}"`, limit })
  }

  async * since (arrival: number): AsyncIterable<Uint8Array> {
    for await (const key of this.db.values({ gt: `l!${pad(arrival)}`, lt: 'l"' })) {
      const v = await this.db.get(`e!${new TextDecoder().decode(key)}`)
      if (v != null) yield v
    }
  }

  async snapshot (): Promise<Snapshot | undefined> {
    const v = await this.db.get('s!snapshot')
    return v == null ? undefined : decodeFrame(v, SnapshotSchema, 1024 * 1024 * 1024, 'crdt snapshot')
  }

  async saveSnapshot (s: Snapshot): Promise<void> {
    await this.commit.write([{ type: 'put', sublevel: this.db, key: 's!snapshot', value: encodeFrame(s) }] as BatchOp[])
  }

  arrivals (): number { return this.count }
}
