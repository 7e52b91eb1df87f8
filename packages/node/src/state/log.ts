/**
 * Where a replica keeps the signed envelopes it has accepted, by author stream and sequence,
 * so it can hand peers what they lack. `MemoryLog` serves the convergence tests;
 * `LevelLog` persists (SPEC.md §11.3): the envelopes in LevelDB,
 *   e!<stream>!<seq:12>   → envelope bytes
 *   l!<arrival:12>        → "<stream>!<seq:12>" (arrival order, replayed after the snapshot)
 * and the snapshot in a file beside the store, `<snapshots dir>/crdt.snapshot` (SNAPSHOT_MAGIC,
 * layout below). Older stores keep it in LevelDB, read until the next snapshot replaces it:
 *   s!head                → CBOR {arrival, vv, size}: the snapshot's arrival, version vector, update size
 *   s!update!<n:6>        → the snapshot's update (the merged document), in pieces of at most 1 MiB
 *   s!sum                 → SHA-256 of the snapshot's update (a snapshot that does not match is not used)
 *   s!snapshot            → (older still) CBOR {update, arrival, vv} in one value
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { MalformedFrameError } from '../errors.js'
import { ensureDir, readFileBytes, removeStaleTemps, writeFileAtomic } from '../home.js'
import type { BatchOp, GroupCommit } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import { z } from 'zod'

export interface Snapshot {
  update: Uint8Array
  arrival: number
  vv: Record<string, number>
  /** read from where an older version kept it: the next snapshot should be written even with nothing new */
  stale?: boolean
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
 * The snapshot file (SPEC.md §11.3): `CMRS`, u32 LE version, u32 LE header length, SHA-256 of
 * every byte after these 44, the header (CBOR {arrival, vv, size}), then the update, raw (size
 * bytes); nothing after it. One read into one buffer, the update a view of it: no LevelDB block
 * cache, mapped tables or native copy of huge values (at 100k notes the 26 MB update read from
 * 1 MiB LevelDB pieces took ~400 ms, from the file ~150 ms; RSS after start-up ~204 -> ~180 MB).
 */
export const SNAPSHOT_FILE = 'crdt.snapshot'
const SNAPSHOT_MAGIC = [0x43, 0x4d, 0x52, 0x53] // CMRS
const SNAPSHOT_FILE_VERSION = 1
const PREAMBLE = 44
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
const MAX_HEAD_BYTES = 1024 * 1024
const PIECES = { gte: 's!update!', lt: 's!update"' }
const LEGACY = [{ gte: 's!head', lte: 's!head' }, { gte: 's!snapshot', lte: 's!snapshot' }, { gte: 's!sum', lte: 's!sum' }, PIECES]

const SnapshotSchema = z.object({ update: zBytes(), arrival: z.number().int(), vv: z.record(z.string(), z.number()) })
const HeadSchema = z
  .object({ arrival: z.number().int(), vv: z.record(z.string(), z.number()), size: z.number().int().nonnegative().max(MAX_SNAPSHOT_BYTES) })
  .strict()

export class LevelLog implements EnvelopeLog {
  private count = 0
  /** the last append handed to the group commit: a snapshot is written once it is durable */
  private lastAppend: Promise<void> = Promise.resolve()
  /** the snapshot being written: one at a time, in order */
  private saving: Promise<void> = Promise.resolve()
  private readonly file: string

  /** `dir`: the snapshots directory beside the store (home.ts snapshotsBeside), created 0700 at open. */
  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit,
    private readonly dir: string
  ) {
    this.file = join(dir, SNAPSHOT_FILE)
  }

  async open(): Promise<void> {
    await ensureDir(this.dir)
    await removeStaleTemps(this.dir) // a crash during a write; the store's lock is ours, so no write is under way
    for await (const k of this.db.keys({ gte: 'l!', lt: 'l"', reverse: true, limit: 1 })) this.count = Number(k.slice(2))
  }

  async append(stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    const key = `${stream}!${pad(seq)}`
    this.count++
    const write = this.commit.write([
      { type: 'put', sublevel: this.db, key: `e!${key}`, value: bytes },
      { type: 'put', sublevel: this.db, key: `l!${pad(this.count)}`, value: new TextEncoder().encode(key) }
    ] as BatchOp[])
    this.lastAppend = write
    await write
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

  /** The snapshot file; without one, the snapshot an older version left in LevelDB. */
  async snapshot(): Promise<Snapshot | undefined> {
    const bytes = await readFileBytes(this.file, PREAMBLE + MAX_HEAD_BYTES + MAX_SNAPSHOT_BYTES)
    if (bytes != null) return decodeSnapshotFile(bytes)
    return await this.levelSnapshot()
  }

  /** Where versions before the snapshot file kept it: head, sum and pieces, or one older value. */
  private async levelSnapshot(): Promise<Snapshot | undefined> {
    const head = await this.db.get('s!head')
    if (head == null) {
      const v = await this.db.get('s!snapshot')
      return v == null ? undefined : { ...decodeFrame(v, SnapshotSchema, MAX_SNAPSHOT_BYTES, 'crdt snapshot'), stale: true }
    }
    const { arrival, vv, size } = decodeFrame(head, HeadSchema, MAX_HEAD_BYTES, 'crdt snapshot head')
    const update = new Uint8Array(size)
    let at = 0
    for await (const v of this.db.values({ ...PIECES, fillCache: false } as object)) {
      if (at + v.byteLength > size) break
      update.set(v, at)
      at += v.byteLength
    }
    if (at !== size) throw new MalformedFrameError(`crdt snapshot has ${at} of its ${size} bytes`)
    // older stores have no sum: their snapshot is taken as it decodes
    const sum = await this.db.get('s!sum')
    if (sum != null && !Buffer.from(sum).equals(sha256(update))) throw new MalformedFrameError('crdt snapshot does not match its checksum')
    return { update, arrival, vv, stale: true }
  }

  /**
   * Replace the snapshot file whole (writeFileAtomic: exclusive temp file, fsync, rename, fsync
   * of the directory), once every envelope it counts is durable in the log, so a crash leaves the
   * old snapshot or the new one, and neither claims an envelope the log lacks. Then an older
   * version's snapshot keys, if any, are deleted. One save at a time, in the order asked.
   */
  async saveSnapshot(s: Snapshot): Promise<void> {
    const appended = this.lastAppend
    const run = this.saving.then(async () => {
      await appended.catch(() => {}) // a failed append is not in the log, nor counted by a restart past it
      const head = encodeFrame({ arrival: s.arrival, vv: s.vv, size: s.update.byteLength })
      const preamble = new Uint8Array(PREAMBLE)
      preamble.set(SNAPSHOT_MAGIC, 0)
      const dv = new DataView(preamble.buffer)
      dv.setUint32(4, SNAPSHOT_FILE_VERSION, true)
      dv.setUint32(8, head.byteLength, true)
      preamble.set(createHash('sha256').update(head).update(s.update).digest(), 12)
      await writeFileAtomic(this.file, [preamble, head, s.update], 0o600)
      const ops: BatchOp[] = []
      for (const range of LEGACY) for await (const key of this.db.keys(range)) ops.push({ type: 'del', sublevel: this.db, key } as BatchOp)
      await this.commit.write(ops)
    })
    this.saving = run.catch(() => {})
    await run
  }

  arrivals(): number {
    return this.count
  }
}

function sha256(b: Uint8Array): Uint8Array {
  return createHash('sha256').update(b).digest()
}

/** A snapshot file's contents; throws when it is not one this version wrote, whole and unchanged. */
export function decodeSnapshotFile(b: Uint8Array): Snapshot {
  const bad = (what: string): never => {
    throw new MalformedFrameError(`crdt snapshot file ${what}`)
  }
  if (b.byteLength < PREAMBLE || SNAPSHOT_MAGIC.some((m, i) => b[i] !== m)) bad('is not one (no CMRS at its start)')
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const version = dv.getUint32(4, true)
  if (version !== SNAPSHOT_FILE_VERSION) bad(`has version ${version}, not ${SNAPSHOT_FILE_VERSION}`)
  const hlen = dv.getUint32(8, true)
  if (hlen > MAX_HEAD_BYTES || PREAMBLE + hlen > b.byteLength) bad('has a header longer than the file')
  if (!Buffer.from(sha256(b.subarray(PREAMBLE))).equals(b.subarray(12, PREAMBLE))) bad('does not match its checksum')
  const { arrival, vv, size } = decodeFrame(b.subarray(PREAMBLE, PREAMBLE + hlen), HeadSchema, MAX_HEAD_BYTES, 'crdt snapshot head')
  if (PREAMBLE + hlen + size !== b.byteLength) bad(`has ${b.byteLength - PREAMBLE - hlen} bytes of update, its header says ${size}`)
  return { update: b.subarray(PREAMBLE + hlen), arrival, vv }
}
