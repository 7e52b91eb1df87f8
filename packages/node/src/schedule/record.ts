/**
 * A schedule as stored (SPEC.md §18.1): CBOR under `j!<id>` in the session's `schedule`
 * sublevel, checked against this schema when loaded (a bad record is skipped and counted).
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { MAX_BODY_BYTES, PRIORITIES } from '../messaging/constants.js'
import { MAX_CRON_CHARS, MAX_TARGETS, OCCURRENCE_ID_CONTEXT } from './constants.js'

const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
export const SCHEDULE_STATES = ['active', 'done', 'cancelled'] as const

export const FiredSchema = z
  .object({
    due: time,
    at: time,
    results: z.array(z.object({ to: z.string().max(256), name: z.string().max(256), id: z.string().max(64) })).max(MAX_TARGETS * 2)
  })
  .strict()

export const ScheduleSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(/^[0-9a-f]{16}$/),
    /** the targets as given; peers are resolved again at each fire */
    to: z.array(z.string().min(1).max(256)).min(1).max(MAX_TARGETS),
    /** the peer id each peer target named when scheduled: used when it no longer resolves */
    ids: z.record(z.string(), z.string().max(128)),
    body: z.string().max(MAX_BODY_BYTES * 4),
    pri: z.enum(PRIORITIES),
    cron: z.string().max(MAX_CRON_CHARS).optional(),
    tz: z.string().max(64).optional(),
    /** due time of the next occurrence (ms); absent once done or cancelled */
    next: time.optional(),
    fired: z.number().int().nonnegative(),
    state: z.enum(SCHEDULE_STATES),
    createdAt: time,
    /** when it left the active state */
    endedAt: time.optional(),
    last: FiredSchema.optional()
  })
  .strict()

export type Schedule = z.infer<typeof ScheduleSchema>
export type Fired = z.infer<typeof FiredSchema>

export const MAX_RECORD_BYTES = MAX_BODY_BYTES * 4 + 64 * 1024

/**
 * The message id of one occurrence for one target (a peer id, `@group` or `self`): the same
 * on every re-fire of that occurrence, so a recipient's inbox keeps one copy.
 */
export function occurrenceId(schedule: string, due: number, target: string): Uint8Array {
  const h = createHash('sha256').update(`${OCCURRENCE_ID_CONTEXT}${schedule}\0${due}\0${target}`).digest()
  return new Uint8Array(h.subarray(0, 16))
}

/** What the control socket and the CLI show of a schedule. */
export interface ScheduleView {
  id: string
  to: string[]
  message: string
  priority: Schedule['pri']
  kind: 'once' | 'cron'
  cron?: string
  timezone?: string
  next?: number
  fired: number
  state: Schedule['state']
  createdAt: number
  endedAt?: number
  last?: Fired
}

export function scheduleView(s: Schedule): ScheduleView {
  const v: ScheduleView = {
    id: s.id,
    to: s.to,
    message: s.body,
    priority: s.pri,
    kind: s.cron != null ? 'cron' : 'once',
    fired: s.fired,
    state: s.state,
    createdAt: s.createdAt
  }
  if (s.cron != null) v.cron = s.cron
  if (s.tz != null) v.timezone = s.tz
  if (s.next != null) v.next = s.next
  if (s.endedAt != null) v.endedAt = s.endedAt
  if (s.last != null) v.last = s.last
  return v
}
