/**
 * A root map read through its schema (schema.ts). Remote updates are checked before they are
 * applied, so a bad value can only come from a store an older version wrote: it is skipped
 * (as if absent) and counted, never trusted, never fatal. Verdicts are cached per value object
 * (Yjs hands out the same object until the entry is overwritten).
 */
import type * as Y from 'yjs'
import { logger } from '@libp2p/logger'
import type { Root } from './constants.js'
import { entryProblem } from './schema.js'

const log = logger('claudemesh:crdt')

export class CheckedMap<T> {
  private readonly verdicts = new WeakMap<object, boolean>()
  private readonly badKeys = new Set<string>()

  constructor(
    readonly raw: Y.Map<unknown>,
    private readonly root: Root
  ) {}

  /** Keys found holding a value that breaks the schema (skipped). */
  get skipped(): number {
    return this.badKeys.size
  }

  get(key: string): T | undefined {
    const v = this.raw.get(key)
    return v !== undefined && this.ok(key, v) ? (v as T) : undefined
  }

  has(key: string): boolean {
    return this.get(key) !== undefined
  }

  *entries(): IterableIterator<[string, T]> {
    for (const [k, v] of this.raw.entries()) if (this.ok(k, v)) yield [k, v as T]
  }

  private ok(key: string, v: unknown): boolean {
    const cached = typeof v === 'object' && v !== null ? this.verdicts.get(v) : undefined
    if (cached != null) return cached
    const problem = entryProblem(this.root, key, v)
    if (typeof v === 'object' && v !== null) this.verdicts.set(v, problem == null)
    if (problem != null && !this.badKeys.has(key)) {
      this.badKeys.add(key)
      log('skipped %s entry %s: %s', this.root, key.slice(0, 64), problem)
    }
    return problem == null
  }
}
