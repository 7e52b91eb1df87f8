/**
 * Scheduled messages and reminders (SPEC.md §18). A schedule is on disk (synced) before `add`
 * answers; a timer fires what is due through the normal send path, and each occurrence is
 * recorded in the same synced batch as its last durable write (the DM outbox write when there
 * are DMs). Earlier writes of a fire (group publishes, a reminder in the own inbox) carry ids
 * derived from schedule and occurrence, so a fire repeated after a crash dedupes everywhere.
 */
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import { decodeFrame, encodeFrame } from '../codec.js'
import { InvalidMessageError } from '../errors.js'
import type { Priority } from '../messaging/constants.js'
import { idText } from '../messaging/envelope.js'
import { ALL, checkBody, type DeliveryTarget, type Messaging } from '../messaging/index.js'
import { resolveTargets } from '../messaging/resolve.js'
import type { Presence } from '../presence/presence.js'
import type { BatchOp, GroupCommit } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import * as c from './constants.js'
import { type Fired, MAX_RECORD_BYTES, occurrenceId, type Schedule, ScheduleSchema } from './record.js'
import { checkCron, firstDue, localZone, nextCron } from './when.js'

const log = logger('claudemesh:schedule')

export interface ScheduleInput {
  to: string | string[]
  message: string
  priority?: Priority
  at?: string | number
  in?: string
  cron?: string
}

export interface ScheduleEvents {
  /** an occurrence was sent and recorded */
  'schedule:fired': CustomEvent<Schedule>
}

export class Scheduler extends TypedEventEmitter<ScheduleEvents> {
  private readonly active = new Map<string, Schedule>()
  private readonly retryAt = new Map<string, number>()
  private timer?: ReturnType<typeof setTimeout>
  private running = false
  private ticking = false
  private again = false
  readonly stats = { fired: 0, failed: 0, skipped: 0 }

  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit,
    private readonly mail: Messaging,
    private readonly presence: Presence
  ) {
    super()
  }

  async start(): Promise<void> {
    const stale: string[] = []
    for await (const [k, v] of this.db.iterator({ gte: 'j!', lt: 'j"' })) {
      let s: Schedule
      try {
        s = decodeFrame(v, ScheduleSchema, MAX_RECORD_BYTES, 'schedule')
      } catch (err) {
        this.stats.skipped++
        log('skipped schedule %s: %s', k, (err as Error).message)
        continue
      }
      if (s.state === 'active') this.active.set(s.id, s)
      else if ((s.endedAt ?? 0) < Date.now() - c.KEEP_DONE_MS) stale.push(k)
    }
    if (stale.length > 0) await this.db.batch(stale.map(key => ({ type: 'del' as const, key })))
    this.running = true
    // what came due while the node was down fires now, once
    this.kick()
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
  }

  get size(): number {
    return this.active.size
  }

  /** Validate, resolve and store a schedule; resolves once it is on disk. */
  async add(input: ScheduleInput): Promise<Schedule> {
    checkBody(input.message)
    const kinds = [input.at, input.in, input.cron].filter(x => x != null).length
    if (kinds !== 1) throw new InvalidMessageError('give exactly one of at, in or cron')
    if (this.active.size >= c.MAX_ACTIVE)
      throw new InvalidMessageError(`this session already has ${c.MAX_ACTIVE} active schedules (the limit): cancel some first`)
    const to = (Array.isArray(input.to) ? input.to : [input.to]).map(t => t.trim())
    if (to.length === 0 || to.length > c.MAX_TARGETS) throw new InvalidMessageError(`a schedule names 1 to ${c.MAX_TARGETS} targets`)
    const ids = this.checkTargets(to)
    const tz = input.cron != null ? localZone() : undefined
    const next = input.cron != null ? checkCron(input.cron, tz) : firstDue(input)
    const s: Schedule = {
      v: 1,
      id: randomBytes(8).toString('hex'),
      to,
      ids,
      body: input.message,
      pri: input.priority ?? 'next',
      next,
      fired: 0,
      state: 'active',
      createdAt: Date.now(),
      ...(input.cron != null ? { cron: input.cron.trim() } : {}),
      ...(tz != null ? { tz } : {})
    }
    await this.commit.write([this.op(s)])
    this.active.set(s.id, s)
    this.kick()
    return s
  }

  /** Active schedules (and, with `all`, the fired and cancelled ones still kept), soonest first. */
  async list(opts: { all?: boolean } = {}): Promise<Schedule[]> {
    const out = [...this.active.values()]
    if (opts.all === true) {
      for await (const v of this.db.values({ gte: 'j!', lt: 'j"' })) {
        const s = ScheduleSchema.safeParse(decodeSafe(v))
        if (s.success && s.data.state !== 'active') out.push(s.data)
      }
    }
    return out.sort((a, b) => (a.next ?? Number.MAX_SAFE_INTEGER) - (b.next ?? Number.MAX_SAFE_INTEGER) || b.createdAt - a.createdAt)
  }

  /** Cancel an active schedule; resolves with it once the cancellation is on disk. */
  async cancel(id: string): Promise<Schedule> {
    const s = this.active.get(id)
    if (s == null) throw new InvalidMessageError(`no active schedule ${id.slice(0, 32)} in this session`)
    const { next: _, ...rest } = s
    const done: Schedule = { ...rest, state: 'cancelled', endedAt: Date.now() }
    await this.commit.write([this.op(done)])
    this.active.delete(id)
    return done
  }

  /** Each target must resolve now (a typo is refused at once); peers are named again at fire time. */
  private checkTargets(to: string[]): Record<string, string> {
    const ids: Record<string, string> = {}
    for (const t of to) {
      if (isSelf(t)) continue
      const [r] = resolveTargets([t], this.presence.list(), this.presence.selfId)
      if (r?.kind === 'peer') ids[t] = r.id
    }
    return ids
  }

  /** Targets at fire time: a name that no longer resolves (gone, or now shared) keeps the peer it named. */
  private targets(s: Schedule): DeliveryTarget[] {
    const out = new Map<string, DeliveryTarget>()
    for (const t of s.to) {
      if (isSelf(t)) {
        out.set('self', { kind: 'self' })
        continue
      }
      let r: DeliveryTarget | undefined
      try {
        r = resolveTargets([t], this.presence.list(), this.presence.selfId)[0]
      } catch {
        const id = s.ids[t]
        if (id != null) r = { kind: 'peer', id, name: this.presence.get(id)?.name ?? t }
      }
      if (r != null) out.set(r.kind === 'peer' ? r.id : r.kind === 'group' ? `@${r.group}` : 'self', r)
    }
    return [...out.values()]
  }

  /** Run a tick soon: checks never overlap, and a request during one runs another after it. */
  private kick(): void {
    if (!this.running) return
    if (this.ticking) {
      this.again = true
      return
    }
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      void this.tick()
    }, 0)
    this.timer.unref()
  }

  private async tick(): Promise<void> {
    this.ticking = true
    try {
      do {
        this.again = false
        const now = Date.now()
        const due = [...this.active.values()]
          .filter(s => (s.next ?? Infinity) <= now && (this.retryAt.get(s.id) ?? 0) <= now)
          .sort((a, b) => (a.next ?? 0) - (b.next ?? 0))
        for (const s of due) {
          if (!this.running) return
          await this.fire(s)
        }
      } while (this.again && this.running)
    } finally {
      this.ticking = false
    }
    this.arm()
  }

  private arm(): void {
    if (!this.running) return
    let soonest = Infinity
    for (const s of this.active.values()) soonest = Math.min(soonest, Math.max(s.next ?? Infinity, this.retryAt.get(s.id) ?? 0))
    if (soonest === Infinity) return
    clearTimeout(this.timer)
    this.timer = setTimeout(
      () => {
        void this.tick()
      },
      Math.min(Math.max(0, soonest - Date.now()), c.MAX_TIMER_MS)
    )
    this.timer.unref()
  }

  /** One occurrence: send, and record it in the same synced batch as the send's last write. */
  private async fire(s: Schedule): Promise<void> {
    const due = s.next ?? Date.now()
    const now = Date.now()
    const targets = this.targets(s)
    const idFor = (key: string): Uint8Array => occurrenceId(s.id, due, key)
    // a cron schedule that missed occurrences while the node was down fires once, then goes on from now
    const next = s.cron != null ? nextCron(s.cron, s.tz, Math.max(now, due)) : null
    const { next: _, ...rest } = s
    const after: Schedule = {
      ...rest,
      fired: s.fired + 1,
      state: next == null ? 'done' : 'active',
      ...(next != null ? { next } : { endedAt: now }),
      last: { due, at: now, results: targets.map(t => this.result(t, idFor)) }
    }
    try {
      await this.mail.deliver(targets, { body: s.body, pri: s.pri }, { idFor, ops: [this.op(after)] })
    } catch (err) {
      this.stats.failed++
      this.retryAt.set(s.id, now + c.RETRY_MS)
      log('schedule %s could not fire: %s', s.id, (err as Error).message)
      return
    }
    this.retryAt.delete(s.id)
    this.stats.fired++
    if (this.active.get(s.id) !== s) {
      // cancelled while this occurrence was being sent: it was sent, and the cancellation stands
      const { next: _n, ...fired } = after
      await this.commit.write([this.op({ ...fired, state: 'cancelled', endedAt: Date.now() })]).catch(() => {})
      return
    }
    if (after.state === 'active') this.active.set(s.id, after)
    else this.active.delete(s.id)
    this.safeDispatchEvent('schedule:fired', { detail: after })
  }

  /** What a fire hands each target: known before sending, since ids follow from the occurrence. */
  private result(t: DeliveryTarget, idFor: (key: string) => Uint8Array): Fired['results'][number] {
    if (t.kind === 'self') return { to: this.presence.selfId, name: this.presence.self().name, id: idText(idFor('self')) }
    if (t.kind === 'group') {
      const label = t.group === ALL ? '@all' : `@${t.group}`
      return { to: label, name: label, id: idText(idFor(`@${t.group}`)) }
    }
    return { to: t.id, name: t.name, id: idText(idFor(t.id)) }
  }

  /** The batch op that records a schedule's new state (joins a send's synced write). */
  op(s: Schedule): BatchOp {
    return { type: 'put', sublevel: this.db, key: `j!${s.id}`, value: encodeFrame(s) } as BatchOp
  }
}

export const isSelf = (t: string): boolean => (c.SELF_TARGETS as readonly string[]).includes(t.trim().toLowerCase())

function decodeSafe(v: Uint8Array): unknown {
  try {
    return decodeFrame(v, ScheduleSchema, MAX_RECORD_BYTES, 'schedule')
  } catch {
    return undefined
  }
}
