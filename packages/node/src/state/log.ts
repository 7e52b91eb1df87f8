/**
 * Where a replica keeps the signed envelopes it has accepted, by author stream and sequence,
 * so it can hand peers what they lack. `MemoryLog` serves the convergence tests;
 * `LevelLog` persists (SPEC.md §11.3):
 *   e!<stream>!<seq:12>   → envelope bytes
 *   l!<arrival:12>        → "<stream>!<seq:12>" (arrival order, replayed after the snapshot)
 *   s!head                → CBOR {arrival, vv, size}: the snapshot's arrival, version vector, update size
 *   s!update!<n:6>        → the snapshot's update (the merged document), in pieces of SNAPSHOT_CHUNK_BYTES
 *   s!sum                 → SHA-256 of the snapshot's update (a snapshot that does not match is not used)
 *   s!snapshot            → (older stores) CBOR {update, arrival, vv} in one value
 */
import { createHash } from 'node:crypto'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { MalformedFrameError } from '../errors.js'
import type { BatchOp, GroupCommit } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import { z } from 'zod'

export interface Snapshot {
  update: Uint8Array
  arrival: number
  vv: Record<string, number>
}

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

  async append(stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    let m = this.byStream.get(stream)
    if (m == null) this.byStream.set(stream, (m = new Map()))
    m.set(seq, bytes)
    this.order.push(bytes)
  }

  async *range(stream: string, afterSeq: number, limit: number): AsyncIterable<Uint8Array> {
    const m = this.byStream.get(stream)
    if (m == null) return
    let n = 0
    for (const seq of [...m.keys()].filter(s => s > afterSeq).sort((a, b) => a - b)) {
      if (n++ >= limit) return
      yield m.get(seq) as Uint8Array
    }
  }

  async *since(arrival: number): AsyncIterable<Uint8Array> {
    yield* this.order.slice(arrival)
  }

  async snapshot(): Promise<Snapshot | undefined> {
    return this.snap
  }
  async saveSnapshot(s: Snapshot): Promise<void> {
    this.snap = s
  }
  arrivals(): number {
    return this.order.length
  }
}

/**
 * A snapshot's update is stored raw, in pieces: LevelDB holds a huge value whole in native
 * memory that the process does not give back (measured at 100k notes: a 26 MB snapshot in one
 * value left ~40 MB more RSS after start-up), and raw bytes need no decoding copy.
 */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
const PIECES = { gte: 's!update!', lt: 's!update"' }
const pieceKey = (n: number): string => `s!update!${String(n).padStart(6, '0')}`

const SnapshotSchema = z.object({ update: zBytes(), arrival: z.number().int(), vv: z.record(z.string(), z.number()) })
const HeadSchema = z
  .object({ arrival: z.number().int(), vv: z.record(z.string(), z.number()), size: z.number().int().nonnegative().max(MAX_SNAPSHOT_BYTES) })
  .strict()

export class LevelLog implements EnvelopeLog {
  private count = 0

  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit
  ) {}

  async open(): Promise<void> {
    for await (const k of this.db.keys({ gte: 'l!', lt: 'l"', reverse: true, limit: 1 })) this.count = Number(k.slice(2))
  }

  async append(stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    const key = `${stream}!${pad(seq)}`
    this.count++
    await this.commit.write([
      { type: 'put', sublevel: this.db, key: `e!${key}`, value: bytes },
      { type: 'put', sublevel: this.db, key: `l!${pad(this.count)}`, value: new TextEncoder().encode(key) }
    ] as BatchOp[])
  }

  async *range(stream: string, afterSeq: number, limit: number): AsyncIterable<Uint8Array> {
    yield* this.db.values({ gt: `e!${stream}!${pad(afterSeq)}`, lt: `e!${stream}"`, limit })
  }

  async *since(arrival: number): AsyncIterable<Uint8Array> {
    for await (const key of this.db.values({ gt: `l!${pad(arrival)}`, lt: 'l"' })) {
      const v = await this.db.get(`e!${new TextDecoder().decode(key)}`)
      if (v != null) yield v
    }
  }

  async snapshot(): Promise<Snapshot | undefined> {
    const head = await this.db.get('s!head')
    if (head == null) {
      const v = await this.db.get('s!snapshot')
      return v == null ? undefined : decodeFrame(v, SnapshotSchema, MAX_SNAPSHOT_BYTES, 'crdt snapshot')
    }
    const { arrival, vv, size } = decodeFrame(head, HeadSchema, 1024 * 1024, 'crdt snapshot head')
    const read = (await this.piecesAhead(size)) ?? (await this.piecesInOrder(size))
    // older stores have no sum: their snapshot is taken as it decodes
    const sum = await this.db.get('s!sum')
    if (sum != null && !Buffer.from(sum).equals(read.sum)) throw new MalformedFrameError('crdt snapshot does not match its checksum')
    return { update: read.update, arrival, vv }
  }

  /**
   * The pieces as this version writes them (SNAPSHOT_CHUNK_BYTES each, the last one shorter),
   * each read while the one before is copied and summed (measured at 100k notes, a 26 MB update:
   * ~410 -> ~345 ms on a loaded machine); not through LevelDB's block cache, which would keep the
   * last of them. Undefined when they are not laid out so (an older or another writer's pieces).
   */
  private async piecesAhead(size: number): Promise<{ update: Uint8Array; sum: Uint8Array } | undefined> {
    const n = Math.ceil(size / SNAPSHOT_CHUNK_BYTES)
    const get = async (i: number): Promise<Uint8Array | undefined> => await this.db.get(pieceKey(i), { fillCache: false } as object)
    const update = new Uint8Array(size)
    const h = createHash('sha256')
    let next = n > 0 ? get(0) : undefined
    for (let i = 0; i < n; i++) {
      const v = await next
      next = i + 1 < n ? get(i + 1) : undefined
      if (v == null || v.byteLength !== Math.min(SNAPSHOT_CHUNK_BYTES, size - i * SNAPSHOT_CHUNK_BYTES)) {
        await next?.catch(() => {})
        return undefined
      }
      update.set(v, i * SNAPSHOT_CHUNK_BYTES)
      h.update(v)
    }
    return { update, sum: h.digest() }
  }

  /** The pieces in key order, of any size (SPEC.md §11.3: at most 1 MiB each). */
  private async piecesInOrder(size: number): Promise<{ update: Uint8Array; sum: Uint8Array }> {
    const update = new Uint8Array(size)
    let at = 0
    for await (const v of this.db.values(PIECES)) {
      if (at + v.byteLength > size) break
      update.set(v, at)
      at += v.byteLength
    }
    if (at !== size) throw new MalformedFrameError(`crdt snapshot has ${at} of its ${size} bytes`)
    return { update, sum: sha256(update) }
  }

  /** Replace the snapshot whole in one synced batch: head, sum, pieces, the old ones and an older version's single value. */
  async saveSnapshot(s: Snapshot): Promise<void> {
    const ops: BatchOp[] = [{ type: 'del', sublevel: this.db, key: 's!snapshot' } as BatchOp]
    for await (const key of this.db.keys(PIECES)) ops.push({ type: 'del', sublevel: this.db, key } as BatchOp)
    for (let at = 0, n = 0; at < s.update.byteLength; at += SNAPSHOT_CHUNK_BYTES, n++) {
      ops.push({
        type: 'put',
        sublevel: this.db,
        key: pieceKey(n),
        value: s.update.subarray(at, at + SNAPSHOT_CHUNK_BYTES)
      } as BatchOp)
    }
    ops.push({ type: 'put', sublevel: this.db, key: 's!sum', value: sha256(s.update) } as BatchOp)
    ops.push({
      type: 'put',
      sublevel: this.db,
      key: 's!head',
      value: encodeFrame({ arrival: s.arrival, vv: s.vv, size: s.update.byteLength })
    } as BatchOp)
    await this.commit.write(ops)
  }

  arrivals(): number {
    return this.count
  }
}

function sha256(b: Uint8Array): Uint8Array {
  return createHash('sha256').update(b).digest()
}
