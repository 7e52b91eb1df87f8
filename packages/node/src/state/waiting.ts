/**
 * Verified updates that cannot be placed yet (SPEC.md §11.2): an origin or an earlier clock of
 * their author is not in the document. Bounded in count and bytes; past the bounds the oldest
 * goes. Nothing here is in the version vector, so a dropped update comes again with a pull.
 */
import type * as Y from 'yjs'
import * as c from './constants.js'

export interface Candidate {
  stream: string
  seq: number
  bytes: Uint8Array
  author: string
  update: Uint8Array
  structs: Y.Item[]
  client: number
}
export interface Waiting extends Candidate {
  wait: { client: number; clock: number }
}

export class WaitingRoom {
  private readonly byId = new Map<string, Waiting>()
  private bytes = 0

  get size(): number {
    return this.byId.size
  }

  has(stream: string, seq: number): boolean {
    return this.byId.has(`${stream}!${seq}`)
  }

  add(w: Waiting): void {
    const id = `${w.stream}!${w.seq}`
    if (this.byId.has(id)) return
    this.byId.set(id, w)
    this.bytes += w.bytes.byteLength
    // a Map iterates in insertion order: the first key is the oldest
    while (this.byId.size > c.MAX_DEFERRED || this.bytes > c.MAX_DEFERRED_BYTES) {
      const oldest = this.byId.keys().next().value
      if (oldest == null) break
      this.remove(oldest)
    }
  }

  /** Take out one update that `ready` says can be tried again. */
  take(ready: (w: Waiting) => boolean): Waiting | undefined {
    for (const [id, w] of this.byId) {
      if (!ready(w)) continue
      this.remove(id)
      return w
    }
    return undefined
  }

  private remove(id: string): void {
    const w = this.byId.get(id)
    if (w == null) return
    this.byId.delete(id)
    this.bytes -= w.bytes.byteLength
  }
}
