/**
 * Shared key-value state (F11) on the replica's `state` map. Values are any JSON up to
 * MAX_VALUE_BYTES; each entry records who wrote it and when, and a remote writer is known
 * from its verified envelope. Changes from anyone are emitted as `state:change`.
 */
import { TypedEventEmitter } from 'main-event'
import type * as Y from 'yjs'
import { InvalidMessageError } from '../errors.js'
import { CheckedMap } from './checked.js'
import * as c from './constants.js'
import { checkSetValue } from './input.js'
import type { Origin, Replica } from './replica.js'
import type { StoredState as Stored } from './schema.js'

export interface StateEntry {
  key: string
  value: unknown
  updatedBy: string
  updatedAt: number
}
export interface StateChange {
  key: string
  value?: unknown
  by: string
  at: number
  deleted: boolean
  local: boolean
}

export interface StateEvents {
  'state:change': CustomEvent<StateChange>
}

export class SharedState extends TypedEventEmitter<StateEvents> {
  private readonly map: Y.Map<Stored>
  /** what is read goes through the schema: a bad entry from an older version's store is skipped */
  private readonly checked: CheckedMap<Stored>

  constructor(
    private readonly replica: Replica,
    private readonly publish: (envelope: Uint8Array) => void
  ) {
    super()
    this.map = replica.doc.getMap('state')
    this.checked = new CheckedMap(this.map as Y.Map<unknown>, 'state')
    this.map.observe((evt, tr) => {
      const origin = tr.origin as Origin | undefined
      for (const [key, change] of evt.changes.keys) {
        const now = this.checked.get(key)
        if (change.action === 'delete' || now == null) {
          this.safeDispatchEvent('state:change', {
            detail: { key, by: origin?.author ?? '', at: Date.now(), deleted: true, local: origin?.local === true }
          })
        } else {
          this.safeDispatchEvent('state:change', {
            detail: { key, value: now.v, by: now.by, at: now.at, deleted: false, local: origin?.local === true }
          })
        }
      }
    })
  }

  get size(): number {
    let n = 0
    for (const _ of this.checked.entries()) n++
    return n
  }

  /** Entries skipped because they break the schema (only an older version could store one). */
  get skipped(): number {
    return this.checked.skipped
  }

  async set(key: string, value: unknown): Promise<StateEntry> {
    checkKey(key)
    const json = checkSetValue(value)
    const stored: Stored = { v: JSON.parse(json) as unknown, by: this.replica.selfId, at: Date.now() }
    const env = await this.replica.change(() => {
      this.map.set(key, stored)
    })
    if (env != null) this.publish(env)
    return entry(key, stored)
  }

  get(key: string): StateEntry | undefined {
    const s = this.checked.get(key)
    return s == null ? undefined : entry(key, s)
  }

  list(prefix = ''): StateEntry[] {
    const out: StateEntry[] = []
    for (const [k, s] of this.checked.entries()) if (k.startsWith(prefix)) out.push(entry(k, s))
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key)
    if (!this.map.has(key)) return false
    const env = await this.replica.change(() => {
      this.map.delete(key)
    })
    if (env != null) this.publish(env)
    return true
  }
}

function entry(key: string, s: Stored): StateEntry {
  return { key, value: s.v, updatedBy: s.by, updatedAt: s.at }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > c.MAX_KEY_LENGTH)
    throw new InvalidMessageError(`a state key is 1 to ${c.MAX_KEY_LENGTH} characters`)
}
