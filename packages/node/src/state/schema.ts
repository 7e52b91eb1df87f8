/**
 * What a value on each root map must be (SPEC.md §11.5, §11.6), written once: the replica
 * checks every value of a remote update against it before the update touches the document,
 * and readers check what was loaded from an older version's store before they use it.
 */
import { z } from 'zod'
import * as c from './constants.js'
import { reservationEntryProblem } from './reservation-schema.js'
import { taskEntryProblem } from './task-schema.js'

/**
 * Plain JSON, as a JSON text would decode: strings, finite numbers, booleans, null, arrays and
 * objects whose prototype is Object's. Yjs decodes values with lib0, which assigns keys one by
 * one: a `__proto__` key re-prototypes the object (so its fields could be inherited, and it would
 * not survive a JSON round trip), and lib0 also carries undefined, NaN, bigints and bytes.
 */
export function isPlainJson(v: unknown, depthLeft: number = c.MAX_VALUE_DEPTH): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (typeof v !== 'object' || depthLeft <= 0) return false
  if (Array.isArray(v)) return v.every(x => isPlainJson(x, depthLeft - 1))
  if (Object.getPrototypeOf(v) !== Object.prototype) return false
  for (const x of Object.values(v)) if (!isPlainJson(x, depthLeft - 1)) return false
  return true
}

const peerId = z.string().min(1).max(c.MAX_PEER_ID_LENGTH)
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v))

/** A `state` entry: `{v, by, at}`. */
export const StateValueSchema = z
  .object({
    v: z.custom<unknown>(v => v !== undefined, 'a state entry has no value'),
    by: peerId,
    at: time
  })
  .strict()

/** A `memory` note, or its tombstone (`forgotten: true`). */
export const NoteSchema = z
  .object({
    content: z
      .string()
      .min(1)
      .refine(s => jsonBytes(s) <= c.MAX_NOTE_BYTES, `note content over ${c.MAX_NOTE_BYTES} bytes`),
    tags: z.array(z.string().min(1).max(c.MAX_TAG_LENGTH)).max(c.MAX_TAGS),
    author: peerId,
    createdAt: time,
    by: peerId,
    at: time,
    forgotten: z.boolean().optional()
  })
  .strict()

/** A `context` hand-off (§17): one per author, under the author's own PeerId. */
export const ContextSchema = z
  .object({
    summary: z
      .string()
      .min(1)
      .refine(s => jsonBytes(s) <= c.MAX_CONTEXT_SUMMARY_BYTES, `summary over ${c.MAX_CONTEXT_SUMMARY_BYTES} bytes`),
    files: z.array(z.string().min(1).max(c.MAX_CONTEXT_FILE_CHARS)).max(c.MAX_CONTEXT_FILES),
    decisions: z.array(z.string().min(1).max(c.MAX_CONTEXT_DECISION_CHARS)).max(c.MAX_CONTEXT_DECISIONS),
    name: z.string().max(64),
    by: peerId,
    at: time
  })
  .strict()

export type StoredContext = z.infer<typeof ContextSchema>
export type StoredState = z.infer<typeof StateValueSchema>
export type StoredNote = z.infer<typeof NoteSchema>

const KEY_RULES: Record<Exclude<c.Root, 'tasks' | 'reservations'>, (key: string) => boolean> = {
  state: key => key.length > 0 && key.length <= c.MAX_KEY_LENGTH,
  memory: key => /^[0-9a-f]{16}$/.test(key),
  context: key => key.length > 0 && key.length <= c.MAX_PEER_ID_LENGTH
}
const VALUE_SCHEMAS: Record<Exclude<c.Root, 'tasks' | 'reservations'>, z.ZodType> = {
  state: StateValueSchema,
  memory: NoteSchema,
  context: ContextSchema
}

/** Why `value` may not be the entry `key` of the root map `root`, or undefined when it may. */
export function entryProblem(root: string, key: string, value: unknown): string | undefined {
  if (!(c.ROOTS as readonly string[]).includes(root)) return `no root map named ${JSON.stringify(root.slice(0, 32))}`
  if (!isPlainJson(value)) return `a ${root} value that is not plain JSON (within ${c.MAX_VALUE_DEPTH} levels)`
  if (root === 'tasks') return taskEntryProblem(key, value)
  if (root === 'reservations') return reservationEntryProblem(key, value)
  const r = root as Exclude<c.Root, 'tasks' | 'reservations'>
  if (!KEY_RULES[r](key)) return `a ${r} key that breaks its rule`
  const parsed = VALUE_SCHEMAS[r].safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return `a ${r} value that breaks its schema (${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'})`
  }
  // a hand-off sits under its author's own id: nobody writes another member's
  if (r === 'context' && (value as { by: string }).by !== key) return "a context entry under another member's id"
  return undefined
}
