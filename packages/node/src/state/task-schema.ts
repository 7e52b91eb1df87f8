/**
 * What an entry of the `tasks` root map must be (SPEC.md §14.2), checked like state and memory
 * values before a remote update touches the document. Three kinds of entry, told apart by key:
 *   t!<task>            the task as created
 *   u!<task>!<writer>   one writer's field changes, each field with its own Lamport clock
 *   c!<task>!<claimant> one claimant's claim (its lease)
 * A `u!` or `c!` entry must name its signer in the key (`by` is bound to the signer by §11.1),
 * so a member can only speak for itself there.
 */
import { z } from 'zod'
import {
  MAX_DEPS,
  MAX_LEASE_MS,
  MAX_TASK_TEXT_BYTES,
  MAX_TITLE_LENGTH,
  MIN_LEASE_MS,
  TASK_PRIORITIES,
  TASK_STATUSES
} from '../tasks/constants.js'
import * as c from './constants.js'

export { MAX_DEPS, MAX_LEASE_MS, MAX_TASK_TEXT_BYTES, MAX_TITLE_LENGTH, MIN_LEASE_MS, TASK_PRIORITIES, TASK_STATUSES }

const peerId = z.string().min(1).max(c.MAX_PEER_ID_LENGTH)
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v))
const text = z.string().refine(s => jsonBytes(s) <= MAX_TASK_TEXT_BYTES, `over ${MAX_TASK_TEXT_BYTES} bytes`)
export const TASK_ID = /^[0-9a-f]{16}$/

export const TaskFields = {
  title: z.string().min(1).max(MAX_TITLE_LENGTH),
  body: text,
  /** '' (open to anyone), a PeerId, or '@group' */
  assignee: z.string().max(c.MAX_PEER_ID_LENGTH + 1),
  priority: z.enum(TASK_PRIORITIES),
  deps: z.array(z.string().regex(TASK_ID)).max(MAX_DEPS)
}

export const TaskDefSchema = z.object({ ...TaskFields, by: peerId, at: time }).strict()

const clocked = <T extends z.ZodType>(v: T) => z.object({ l: time, v }).strict()
export const TaskStatusSchema = z.object({ s: z.enum(TASK_STATUSES), result: text.optional() }).strict()
export const TaskPatchSchema = z
  .object({
    f: z
      .object({
        title: clocked(TaskFields.title).optional(),
        body: clocked(TaskFields.body).optional(),
        assignee: clocked(TaskFields.assignee).optional(),
        priority: clocked(TaskFields.priority).optional(),
        deps: clocked(TaskFields.deps).optional(),
        status: clocked(TaskStatusSchema).optional()
      })
      .strict(),
    by: peerId,
    at: time
  })
  .strict()

export const TaskClaimSchema = z
  .object({
    /** the claim's Lamport clock: one more than the highest clock the claimant saw on the task */
    l: time,
    /** when the claim was made, by the claimant's clock: kept by renewals; breaks ties between concurrent claims */
    since: time,
    /** lease end, by the claimant's clock; a renewal moves it */
    exp: time,
    ttl: z.number().int().min(MIN_LEASE_MS).max(MAX_LEASE_MS),
    /** false once the claimant let go */
    held: z.boolean(),
    by: peerId,
    at: time
  })
  .strict()

/** A member's choice to watch a task or not; only its own entry counts (SPEC.md §14.8). */
export const TaskWatchSchema = z.object({ on: z.boolean(), by: peerId, at: time }).strict()

export type StoredTaskDef = z.infer<typeof TaskDefSchema>
export type StoredTaskPatch = z.infer<typeof TaskPatchSchema>
export type StoredTaskClaim = z.infer<typeof TaskClaimSchema>
export type StoredTaskWatch = z.infer<typeof TaskWatchSchema>
export type TaskStatus = z.infer<typeof TaskStatusSchema>

export type TaskKey = { kind: 't'; task: string } | { kind: 'u' | 'c' | 'w'; task: string; peer: string }

export function parseTaskKey(key: string): TaskKey | undefined {
  const m = /^([tucw])!([0-9a-f]{16})(?:!(.{1,128}))?$/.exec(key)
  if (m == null) return undefined
  const [, kind, task = '', peer] = m
  if (kind === 't') return peer == null ? { kind: 't', task } : undefined
  return peer == null ? undefined : { kind: kind as 'u' | 'c' | 'w', task, peer }
}

const SCHEMAS = { t: TaskDefSchema, u: TaskPatchSchema, c: TaskClaimSchema, w: TaskWatchSchema }

/** Why `value` may not be the `tasks` entry `key`, or undefined. */
export function taskEntryProblem(key: string, value: unknown): string | undefined {
  const k = parseTaskKey(key)
  if (k == null) return 'a tasks key that breaks its rule'
  const parsed = SCHEMAS[k.kind].safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return `a tasks value that breaks its schema (${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'})`
  }
  if (k.kind !== 't' && (value as { by: string }).by !== k.peer) return 'a tasks entry whose key names another member than its writer'
  return undefined
}
