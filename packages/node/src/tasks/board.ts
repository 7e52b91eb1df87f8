/**
 * The task board (SPEC.md §14) on the replica's `tasks` map: create, list, claim with a
 * lease, update, complete, reopen, cancel, release. Who holds a task is a pure function of
 * the entries (rule.ts); this class writes entries, renews its own leases (holding.ts), and
 * tells its session when a remote update shows it lost a task (`task:lost`), kept one that
 * another member also claimed (`task:conflict`), was assigned one (`task:assigned`), or
 * another member changed one it follows (`task:notice`, watch.ts).
 */
import { randomBytes } from 'node:crypto'
import { TypedEventEmitter } from 'main-event'
import type * as Y from 'yjs'
import { TaskStateError, UnknownTaskError } from '../errors.js'
import type { Origin, Replica } from '../state/replica.js'
import {
  parseTaskKey,
  type StoredTaskClaim,
  type StoredTaskDef,
  type StoredTaskPatch,
  type StoredTaskWatch,
  type TaskStatus
} from '../state/task-schema.js'
import * as c from './constants.js'
import { TaskIndex } from './entries.js'
import { checkFields, type TaskFieldsInput, type TaskInput } from './input.js'
import { type Folded, holderOf } from './rule.js'
import { assignedTo, mayClaim } from './assignee.js'
import { Holding, type TaskConflict, type TaskLost } from './holding.js'
import { type Task, taskView } from './view.js'
import { type TaskNotice, TaskWatch } from './watch.js'

export interface TaskFilter {
  status?: TaskStatus['s']
  assignee?: string
  holder?: string
  claimable?: boolean
  limit?: number
}
export interface ClaimResult {
  won: boolean
  task: Task
}
export interface TaskChange {
  id: string
  local: boolean
}
export type { TaskConflict, TaskLost }
/** A peer assigned a task to this session or one of its groups. */
export interface TaskAssigned {
  id: string
  title: string
  assignee: string
  by: string
  priority: 'high' | 'normal' | 'low'
}
export interface TaskEvents {
  'task:assigned': CustomEvent<TaskAssigned>
  'task:change': CustomEvent<TaskChange>
  'task:lost': CustomEvent<TaskLost>
  'task:conflict': CustomEvent<TaskConflict>
  'task:notice': CustomEvent<TaskNotice>
}

export interface TaskBoardOptions {
  now?: () => number
  /** true when presence knows `peer` to be offline (its leases lapse at once) */
  offline?: (peer: string) => boolean
  /** the groups this session is in, for `@group` assignees */
  groups?: () => string[]
  /** after a claim is written: pull from connected peers so the answer sees concurrent claims */
  settle?: () => Promise<void>
}

export class TaskBoard extends TypedEventEmitter<TaskEvents> {
  readonly index: TaskIndex
  private readonly map: Y.Map<unknown>
  private readonly now: () => number
  private readonly offline: (peer: string) => boolean
  private readonly holding: Holding
  private timer?: ReturnType<typeof setInterval>
  /** views as last built, each good until its lease's end (listing 10k tasks reads these) */
  private readonly views = new Map<string, { task: Task; until: number }>()
  private readonly watch: TaskWatch

  constructor(
    private readonly replica: Replica,
    private readonly publish: (envelope: Uint8Array) => void,
    private readonly opts: TaskBoardOptions = {}
  ) {
    super()
    this.map = replica.doc.getMap('tasks')
    this.index = new TaskIndex(this.map)
    // a field change may be a status change, which moves its dependents' `blockedBy`
    this.index.onChange = (id, kind) => {
      this.views.delete(id)
      if (kind === 'u') for (const [other, v] of this.views) if (v.task.deps.includes(id)) this.views.delete(other)
    }
    this.now = opts.now ?? Date.now
    this.offline = opts.offline ?? (() => false)
    this.holding = new Holding({
      self: this.self,
      index: this.index,
      now: this.now,
      offline: this.offline,
      lost: detail => this.safeDispatchEvent('task:lost', { detail }),
      conflict: detail => this.safeDispatchEvent('task:conflict', { detail })
    })
    this.watch = new TaskWatch(
      { self: this.self, get: id => this.index.get(id), now: this.now, offline: this.offline, assignedToMe: id => this.assignedToMe(id) },
      n => {
        this.safeDispatchEvent('task:notice', { detail: n })
      }
    )
    for (const id of this.index.ids()) {
      if (this.holderAt(id) === this.self) this.holding.shown(id)
      this.watch.look(id, true)
    }
    this.map.observe((evt, tr) => {
      const local = (tr.origin as Origin | undefined)?.local === true
      const ids = new Map<string, boolean>()
      for (const key of evt.keysChanged) {
        const id = parseTaskKey(key)?.task
        if (id != null && !ids.has(id)) ids.set(id, this.assignedToMe(id))
        this.index.reload(key)
      }
      for (const [id, before] of ids) {
        if (!local) this.notice(id, before)
        this.watch.look(id, local)
        this.safeDispatchEvent('task:change', { detail: { id, local } })
      }
    })
  }

  get self(): string {
    return this.replica.selfId
  }
  get size(): number {
    return this.index.ids().length
  }
  get skipped(): number {
    return this.index.checked.skipped
  }

  /** Renew this session's leases in the background until `stop`. */
  start(): void {
    this.timer = setInterval(() => {
      this.tick().catch(() => {})
    }, c.RENEW_CHECK_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Create a task; its creator watches it unless `watch` is false (§14.8). */
  async create(input: TaskInput & { watch?: boolean }): Promise<Task> {
    const fields = checkFields(input, true) as Required<TaskFieldsInput>
    this.index.checkDeps(undefined, fields.deps)
    const id = randomBytes(8).toString('hex')
    const def: StoredTaskDef = { ...fields, by: this.self, at: this.now() }
    // one update: no replica ever sees the task watched by a creator that said not to
    await this.write(`t!${id}`, def, ...(input.watch === false ? [this.watchEntry(id, false)] : []))
    return this.view(id)
  }

  get(ref: string): Task {
    return this.view(this.index.resolve(ref, c.MIN_ID_PREFIX))
  }

  list(filter: TaskFilter = {}): Task[] {
    const out: Task[] = []
    const limit = filter.limit ?? Number.POSITIVE_INFINITY
    for (const id of this.index.ids()) {
      const t = this.view(id)
      if (filter.status != null && t.status !== filter.status) continue
      if (filter.assignee != null && t.assignee !== filter.assignee) continue
      if (filter.holder != null && t.holder !== filter.holder) continue
      if (
        filter.claimable === true &&
        (t.status !== 'open' || t.holder != null || t.blockedBy.length > 0 || !mayClaim(t.assignee, this.self, this.groups()))
      )
        continue
      out.push(t)
      if (out.length >= limit) break
    }
    return out
  }

  /** Claim a task for `ttlMs`; resolves once concurrent claims from connected peers are in (§14.4). */
  async claim(ref: string, ttlMs = c.DEFAULT_LEASE_MS): Promise<ClaimResult> {
    if (!Number.isInteger(ttlMs) || ttlMs < c.MIN_LEASE_MS || ttlMs > c.MAX_LEASE_MS)
      throw new TaskStateError(`a lease is ${c.MIN_LEASE_MS} to ${c.MAX_LEASE_MS} ms`)
    const id = this.index.resolve(ref, c.MIN_ID_PREFIX)
    const f = this.folded(id)
    const t = this.view(id)
    if (t.status !== 'open') throw new TaskStateError(`task ${id} is ${t.status}`)
    if (t.blockedBy.length > 0) throw new TaskStateError(`task ${id} is blocked by ${t.blockedBy.join(', ')} (not done yet)`)
    if (!mayClaim(t.assignee, this.self, this.groups())) throw new TaskStateError(`task ${t.id} is assigned to ${t.assignee}`)
    if (t.holder != null && t.holder !== this.self)
      throw new TaskStateError(`task ${id} is held by ${t.holder} until ${new Date(t.lease?.expiresAt ?? 0).toISOString()}`)
    const now = this.now()
    // held already: a renewal keeps the claim's clock, so it cannot overtake a newer claim
    const l = t.holder === this.self && f.decisive != null ? f.decisive.l : f.top + 1
    const since = t.holder === this.self && f.decisive != null ? f.decisive.since : now
    const claim: StoredTaskClaim = { l, since, exp: now + ttlMs, ttl: ttlMs, held: true, by: this.self, at: now }
    // held from the moment the claim is in the document: a rival claim applied while the write
    // is being made durable must already count as a loss
    this.holding.shown(id)
    // the settle pulls ask peers for claims made before this one's `since` (§14.4): they need
    // not wait for it to be durable, so they start once it is signed and gossiped
    let settled: Promise<void> | undefined
    try {
      await this.writeClaim(id, claim, () => {
        settled = this.opts.settle?.().catch(() => {})
      })
    } finally {
      await settled
    }
    const after = this.view(id)
    return { won: after.holder === this.self, task: after }
  }

  /** Change fields; `status` reopens ('open') or cancels ('cancelled'); `release` lets go of this session's claim; `watch` starts or stops watching. */
  async update(ref: string, patch: TaskFieldsInput & { status?: 'open' | 'cancelled'; release?: boolean; watch?: boolean }): Promise<Task> {
    const id = this.index.resolve(ref, c.MIN_ID_PREFIX)
    const { status, release, watch, ...rest } = patch
    const fields = checkFields(rest, false)
    if (fields.deps != null) this.index.checkDeps(id, fields.deps)
    const t = this.view(id)
    if (status === 'open' && t.status === 'open') throw new TaskStateError(`task ${id} is open already`)
    if (status === 'cancelled' && t.status !== 'open') throw new TaskStateError(`task ${id} is ${t.status}`)
    if (release === true) await this.release(id)
    if (watch != null) await this.write(...this.watchEntry(id, watch))
    const changes: StoredTaskPatch['f'] = {}
    for (const [k, v] of Object.entries(fields)) (changes as Record<string, unknown>)[k] = v
    if (status != null) changes.status = { s: status } as never
    if (Object.keys(changes).length > 0) await this.patch(id, changes)
    else if (release !== true && watch == null) throw new TaskStateError('nothing to change: give a field, a status, release or watch')
    return this.view(id)
  }

  /** Mark a task done with a result; only its holder may, or anyone while nobody holds it. */
  async complete(ref: string, result = ''): Promise<Task> {
    const id = this.index.resolve(ref, c.MIN_ID_PREFIX)
    const t = this.view(id)
    if (t.status !== 'open') throw new TaskStateError(`task ${id} is ${t.status}`)
    if (t.holder != null && t.holder !== this.self)
      throw new TaskStateError(`task ${id} is held by ${t.holder}; only its holder can complete it`)
    checkFields({ body: result }, false)
    await this.patch(id, { status: { s: 'done', result } } as never)
    return this.view(id)
  }

  /** What the timer does: renew this session's leases, and tell of leases on followed tasks that ran out (§14.8). */
  async tick(): Promise<void> {
    this.watch.tick()
    await this.renew()
  }

  /** Renew every lease this session holds once a third of its TTL has passed. */
  async renew(): Promise<void> {
    for (const { id, claim } of this.holding.due()) await this.write(`c!${id}!${this.self}`, claim)
  }

  private async release(id: string): Promise<void> {
    const mine = this.index.entries(id)?.claims.get(this.self)
    if (mine == null || !mine.held) throw new TaskStateError(`you hold no claim on task ${id}`)
    this.holding.released(id)
    await this.write(`c!${id}!${this.self}`, { ...mine, held: false, at: this.now() })
  }

  /** Write fields at one clock above everything on the task, merged into this writer's patch entry. */
  private async patch(id: string, changes: StoredTaskPatch['f']): Promise<void> {
    const l = this.folded(id).top + 1
    const prev = this.index.entries(id)?.patches.get(this.self)?.f ?? {}
    const f: Record<string, unknown> = { ...prev }
    for (const [k, v] of Object.entries(changes)) f[k] = { l, v }
    await this.write(`u!${id}!${this.self}`, { f, by: this.self, at: this.now() })
  }

  private async write(key: string, value: unknown, ...more: Array<[string, unknown]>): Promise<void> {
    const env = await this.replica.change(() => {
      this.map.set(key, value)
      for (const [k, v] of more) this.map.set(k, v)
    })
    if (env != null) this.publish(env)
  }

  /** A claim is gossiped as soon as it is signed, while it is made durable: rivals and watchers see it sooner (§14.4). */
  private async writeClaim(id: string, claim: StoredTaskClaim, gossiped: () => void): Promise<void> {
    await this.replica.change(
      () => {
        this.map.set(`c!${id}!${this.self}`, claim)
      },
      env => {
        this.publish(env)
        gossiped()
      }
    )
  }

  private watchEntry(id: string, on: boolean): [string, StoredTaskWatch] {
    return [`w!${id}!${this.self}`, { on, by: this.self, at: this.now() }]
  }

  /** After a remote change: was this session assigned the task; did it lose it, or keep it against another claimant? */
  private notice(id: string, assignedBefore: boolean): void {
    const f = this.index.get(id)
    if (f != null && !assignedBefore && this.assignedToMe(id) && f.status.v.s === 'open') {
      this.safeDispatchEvent('task:assigned', {
        detail: { id, title: f.title.v, assignee: f.assignee.v, by: f.assignee.w, priority: f.priority.v }
      })
    }
    this.holding.look(id)
  }

  private holderAt(id: string): string | undefined {
    const f = this.index.get(id)
    return f == null ? undefined : holderOf(f, this.now(), this.offline)
  }

  private folded(id: string): Folded {
    const f = this.index.get(id)
    if (f == null) throw new UnknownTaskError(`no task ${id}`)
    return f
  }

  private groups(): string[] {
    return this.opts.groups?.() ?? []
  }

  /** Assigned to this session by name or through one of its groups (not merely open to all). */
  private assignedToMe(id: string): boolean {
    const a = this.index.get(id)?.assignee.v
    return a != null && assignedTo(a, this.self, this.groups())
  }

  /** Presence changed: a claimant's lease may have gone offline or come back (§14.3, §14.8). */
  presenceChanged(): void {
    this.views.clear()
    this.watch.tick()
    this.holding.presenceChanged()
  }

  /** The task as callers see it; cached until an entry of it changes, its lease ends or presence changes. */
  private view(id: string): Task {
    const now = this.now()
    const hit = this.views.get(id)
    if (hit != null && now < hit.until) return hit.task
    const task = taskView(id, this.folded(id), now, this.offline, dep => this.index.get(dep)?.status.v.s)
    this.views.set(id, { task, until: task.lease?.state === 'held' ? task.lease.expiresAt : Number.POSITIVE_INFINITY })
    // what this session was shown it holds (after a restart, before any remote change) is what
    // losing it is measured against
    if (task.holder === this.self) this.holding.shown(id)
    return task
  }
}
