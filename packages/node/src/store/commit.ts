/**
 * Group commit: every write that must be on disk before it is acknowledged goes through
 * here. Writes issued in the same turn of the event loop share one synced LevelDB batch,
 * so an ack costs a fraction of an fsync (stack.md item 16: ~270 µs for one synced write,
 * 26k–77k synced writes/s in batches). Resolves only after the batch is durable.
 */
import type { AbstractBatchOperation } from 'abstract-level'
import type { Store } from './index.js'

export type BatchOp = AbstractBatchOperation<Store, string, Uint8Array>

interface Pending {
  ops: BatchOp[]
  resolve: () => void
  reject: (err: Error) => void
}

export class GroupCommit {
  private queue: Pending[] = []
  private scheduled = false
  private flushing = false
  readonly stats = { batches: 0, writes: 0 }

  constructor(private readonly db: Store) {}

  async write(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject })
      this.schedule()
    })
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
    const batch = this.queue
    this.queue = []
    this.flushing = true
    try {
      // a chained batch costs ~5 µs an operation against ~8 µs for an array batch
      const chain = this.db.batch()
      for (const p of batch) {
        for (const op of p.ops) {
          const opts = op.sublevel != null ? { sublevel: op.sublevel } : {}
          if (op.type === 'put') chain.put(op.key, op.value, opts as never)
          else chain.del(op.key, opts as never)
        }
      }
      await chain.write({ sync: true })
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
}
