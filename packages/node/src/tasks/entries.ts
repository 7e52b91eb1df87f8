/**
 * The `tasks` map regrouped per task (t!, u!, c! and w! entries, SPEC.md §14.2), each read
 * through the schema, with each task's folded fields cached until one of its entries changes:
 * listing 10k tasks reads the cache, not the document.
 */
import type * as Y from 'yjs'
import { TaskStateError, UnknownTaskError } from '../errors.js'
import { CheckedMap } from '../state/checked.js'
import { parseTaskKey, type StoredTaskClaim, type StoredTaskDef, type StoredTaskPatch, type StoredTaskWatch } from '../state/task-schema.js'
import { fold, type Folded, type TaskEntries } from './rule.js'

export class TaskIndex {
  readonly checked: CheckedMap<unknown>
  private readonly tasks = new Map<string, TaskEntries>()
  private readonly folded = new Map<string, Folded | undefined>()
  /** task ids in list order (priority, then creation), rebuilt after any change */
  private order?: string[]

  /** told after an entry of `task` changed (the board drops cached views) */
  onChange?: (task: string, kind: 't' | 'u' | 'c' | 'w') => void

  constructor(readonly map: Y.Map<unknown>) {
    this.checked = new CheckedMap(map, 'tasks')
    for (const [key] of map.entries()) this.reload(key)
  }

  /** Re-read one key of the map; returns the task id it belongs to. */
  reload(key: string): string | undefined {
    const k = parseTaskKey(key)
    if (k == null) return undefined
    let e = this.tasks.get(k.task)
    if (e == null) this.tasks.set(k.task, (e = { patches: new Map(), claims: new Map(), watches: new Map() }))
    const v = this.checked.get(key)
    if (k.kind === 't') e.def = v as StoredTaskDef | undefined
    else if (k.kind === 'u') setOrDelete(e.patches, k.peer, v as StoredTaskPatch | undefined)
    else if (k.kind === 'c') setOrDelete(e.claims, k.peer, v as StoredTaskClaim | undefined)
    else setOrDelete(e.watches, k.peer, v as StoredTaskWatch | undefined)
    const before = this.folded.get(k.task)?.priority.v
    this.folded.delete(k.task)
    // only a new task or a new priority moves the order (claims, the common write, never do)
    if (k.kind === 't' || (k.kind === 'u' && this.get(k.task)?.priority.v !== before)) this.order = undefined
    this.onChange?.(k.task, k.kind)
    return k.task
  }

  entries(id: string): TaskEntries | undefined {
    return this.tasks.get(id)
  }

  get(id: string): Folded | undefined {
    if (this.folded.has(id)) return this.folded.get(id)
    const e = this.tasks.get(id)
    const f = e == null ? undefined : fold(e)
    this.folded.set(id, f)
    return f
  }

  /** Ids of the tasks that exist (their t! entry is held), highest priority first, then oldest. */
  ids(): string[] {
    if (this.order != null) return this.order
    const rank = { high: 0, normal: 1, low: 2 }
    const live: Array<{ id: string; r: number; at: number }> = []
    for (const [id, e] of this.tasks) {
      const f = this.get(id)
      if (f != null && e.def != null) live.push({ id, r: rank[f.priority.v], at: e.def.at })
    }
    live.sort((a, b) => a.r - b.r || a.at - b.at || (a.id < b.id ? -1 : 1))
    this.order = live.map(x => x.id)
    return this.order
  }

  /** The one task id that `ref` names (the id or a unique prefix of at least `minPrefix`), or UnknownTaskError. */
  resolve(ref: string, minPrefix: number): string {
    const hits = this.match(String(ref).toLowerCase(), minPrefix)
    if (hits.length === 1 && hits[0] != null) return hits[0]
    if (hits.length > 1) throw new UnknownTaskError(`"${ref}" names ${hits.length} tasks; give more of the id`)
    throw new UnknownTaskError(`no task "${ref}"${ref.length < minPrefix ? ` (give at least ${minPrefix} characters of its id)` : ''}`)
  }

  /** Every dependency exists, and none depends (through others) on `id`: no cycles. */
  checkDeps(id: string | undefined, deps: string[]): void {
    for (const d of deps) if (this.get(d) == null) throw new UnknownTaskError(`no task ${d} to depend on`)
    if (id == null) return
    const seen = new Set<string>()
    const stack = [...deps]
    for (let d = stack.pop(); d != null; d = stack.pop()) {
      if (d === id) throw new TaskStateError(`task ${id} would depend on itself`)
      if (seen.has(d)) continue
      seen.add(d)
      stack.push(...(this.get(d)?.deps.v ?? []))
    }
  }

  /** The one task id that `ref` names: the id itself or a unique prefix of it. */
  match(ref: string, minPrefix: number): string[] {
    if (this.get(ref) != null) return [ref]
    if (ref.length < minPrefix) return []
    return this.ids().filter(id => id.startsWith(ref))
  }
}

function setOrDelete<T>(m: Map<string, T>, k: string, v: T | undefined): void {
  if (v == null) m.delete(k)
  else m.set(k, v)
}
