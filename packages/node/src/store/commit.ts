/**
 * Group commit: every write that must be on disk before it is acknowledged goes through
 * here. Writes issued in the same turn of the event loop share one synced LevelDB batch,
 * so an ack costs a fraction of an fsync (stack.md item 16: ~270 µs for one synced write,
 * 26k–77k synced writes/s in batches). Resolves only after the batch is durable.
 */
import type { AbstractBatchOperation } from 'abstract-level'
import type { Store } from './index.js'

export type BatchOp = AbstractBatchOperation<Store, string, Uint8Array>

/**
 * A put whose value is encoded when its batch goes to LevelDB, not when it is queued: under a
 * burst thousands of writes wait behind the batch being synced, and an encoded value would wait
 * with each (~460 bytes a queued DM, and a buffer of its own so as not to pin a slab of Node's
 * pool). Encoded at the flush, it is a pool slice that LevelDB copies and that dies at once.
 * `encode` must read only what stays unchanged until the write resolves; if it throws, that
 * write alone is refused.
 */
export interface LazyPut {
  type: 'put'
  sublevel?: BatchOp['sublevel']
  key: string
  encode: () => Uint8Array
}

export type WriteOp = BatchOp | LazyPut

/** An operation on the root store, the key already carrying its sublevel's prefix; the formats classic-level reads. */
type RootOp =
  | { type: 'put'; key: string; value: Uint8Array; keyEncoding: 'utf8'; valueEncoding: 'view' }
  | { type: 'del'; key: string; keyEncoding: 'utf8' }

/** A queued operation: a root one, or a lazy put still to encode (never handed to LevelDB as it is). */
type QueuedOp = RootOp | { type: 'lazy'; key: string; encode: () => Uint8Array }

/** The implementer's side of abstract-level (classic-level's own batch), which the public `batch()` calls after preparing each operation. */
interface Implementation {
  _batch(ops: RootOp[], options: { sync: boolean }): Promise<void>
}

interface Pending {
  resolve: () => void
  reject: (err: Error) => void
  /** how many of the queued operations are this write's (they are consecutive) */
  n: number
}

export class GroupCommit {
  /** the writers waiting for the next batch, one per write() */
  private queue: Pending[] = []
  /** their operations, flat: handed to LevelDB and dropped, never held across the fsync */
  private ops: QueuedOp[] = []
  private scheduled = false
  private flushing = false
  readonly stats = { batches: 0, writes: 0 }

  constructor(private readonly db: Store) {}

  /** Not async: one promise a write, not two (a burst keeps thousands waiting on the fsync). */
  write(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    let root: QueuedOp[]
    try {
      root = ops.map(op => this.rootOp(op))
    } catch (err) {
      return Promise.reject(err as Error)
    }
    return new Promise((resolve, reject) => {
      for (const op of root) this.ops.push(op)
      this.queue.push({ resolve, reject, n: root.length })
      this.schedule()
    })
  }

  /**
   * A sublevel's operation as the root operation abstract-level would make of it: its key
   * with the sublevel's prefix in front (every sublevel here has utf8 keys and byte values,
   * as the root has). Measured per operation: a chained put with a `sublevel` option ~15 µs
   * of CPU, a root array operation ~7 µs (five operations per DM).
   */
  private rootOp(op: WriteOp): QueuedOp {
    const sub = op.sublevel as unknown as { prefix: string; db: unknown } | undefined
    if (sub != null && sub.db !== this.db) throw new Error('a group commit writes only sublevels of its own store')
    const key = sub != null ? sub.prefix + (op.key as string) : (op.key as string)
    if ('encode' in op) return { type: 'lazy', key, encode: op.encode }
    return op.type === 'put'
      ? { type: 'put', key, value: op.value as Uint8Array, keyEncoding: 'utf8', valueEncoding: 'view' }
      : { type: 'del', key, keyEncoding: 'utf8' }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return
    this.scheduled = true
    setImmediate(() => {
      void this.flush()
    })
  }

  private async flush(): Promise<void> {
    this.scheduled = false
    let batch = this.queue
    this.queue = []
    this.flushing = true
    const { ops, refused } = this.encoded(batch, this.takeOps())
    if (refused != null) {
      for (const [p, err] of refused) p.reject(err)
      batch = batch.filter(p => !refused.has(p))
    }
    try {
      // an array batch, not a chained one: classic-level frees a chained batch's native copy
      // of every key and value only when its JS object is collected, and that object lives
      // across the fsync, so under load it reaches the old generation and the copies stay
      // (unseen by V8) until the next major GC: ~40 MB RSS per 100k writes of ~450 bytes.
      // The array form copies them into a native batch inside the call and frees it after
      // the write. Nothing here keeps the operations across the fsync: they can die young
      await this.batch(ops)
      this.stats.batches++
      this.stats.writes += batch.length
      for (const p of batch) p.resolve()
    } catch (err) {
      for (const p of batch) p.reject(err as Error)
    } finally {
      this.flushing = false
      if (this.queue.length > 0) this.schedule()
    }
  }

  /**
   * The operations straight to classic-level: abstract-level's public `batch()` copies each
   * one, resolves its encodings, checks its prefix and runs prewrite hooks, ~10 µs of CPU per
   * operation on top of classic-level's ~4 µs (100k operations of a DM's shape: 1.4–1.7 s
   * against 0.4–0.5 s), ~5 operations per DM. These are already what it would hand over (root
   * keys as utf8 strings, byte values), and the store is ours: nothing adds prewrite hooks to
   * it. Through the public path when it would do more: a store not open (its error), or a
   * listener of its write events.
   */
  private async batch(ops: RootOp[]): Promise<void> {
    const db = this.db
    if (db.status !== 'open' || db.listenerCount('write') > 0) return db.batch(ops, { sync: true })
    await (db as unknown as Implementation)._batch(ops, { sync: true })
  }

  /** The batch's operations with their lazy values encoded; a write whose value fails to encode is refused, and its operations left out. */
  private encoded(batch: Pending[], queued: QueuedOp[]): { ops: RootOp[]; refused?: Map<Pending, Error> } {
    const ops: RootOp[] = []
    let refused: Map<Pending, Error> | undefined
    let at = 0
    for (const p of batch) {
      const start = ops.length
      for (let i = at; i < at + p.n; i++) {
        const op = queued[i] as QueuedOp
        if (op.type !== 'lazy') {
          ops.push(op)
          continue
        }
        try {
          ops.push({ type: 'put', key: op.key, value: op.encode(), keyEncoding: 'utf8', valueEncoding: 'view' })
        } catch (err) {
          ;(refused ??= new Map()).set(p, err as Error)
          ops.length = start
          break
        }
      }
      at += p.n
    }
    return { ops, ...(refused != null ? { refused } : {}) }
  }

  private takeOps(): QueuedOp[] {
    const ops = this.ops
    this.ops = []
    return ops
  }
}
