/**
 * The presence table on disk (SPEC.md §6.3, Persistence), written behind: records accepted
 * within `SAVE_DELAY_MS` of the first unsaved one go in one batch, the newest per peer. One
 * put per accepted record was the largest single cost of presence in a 20-node mesh (every
 * heartbeat of every peer); a crash loses at most that window of soft state that every peer
 * announces again within a heartbeat.
 */
import { logger } from '@libp2p/logger'
import type { Sublevel } from '../store/index.js'
import { SAVE_DELAY_MS } from './constants.js'

const log = logger('claudemesh:presence')

export class PresenceSaver {
  private readonly unsaved = new Map<string, Uint8Array>()
  private timer?: ReturnType<typeof setTimeout>

  constructor(private readonly store: Sublevel) {}

  /** Remember `bytes` as the record of `id`, saved with the next batch. */
  put(id: string, bytes: Uint8Array): void {
    this.unsaved.set(id, bytes)
    if (this.timer != null) return
    this.timer = setTimeout(() => {
      void this.save()
    }, SAVE_DELAY_MS)
    this.timer.unref()
  }

  /** Forget a peer: its pending record is dropped and its stored one deleted. */
  del(id: string): void {
    this.unsaved.delete(id)
    void this.store.del(id).catch(() => {})
  }

  /** Write every record not saved yet, in one batch (also at stop). */
  async save(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.unsaved.size === 0) return
    const ops = [...this.unsaved].map(([key, value]) => ({ type: 'put' as const, key, value }))
    this.unsaved.clear()
    try {
      await this.store.batch(ops)
    } catch (err) {
      log('could not persist %d presence records: %s', ops.length, (err as Error).message)
    }
  }
}
