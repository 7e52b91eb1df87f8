/**
 * What an entry of the `reservations` root map must be (SPEC.md §15.2), checked like every other
 * root's values before a remote update touches the document. One entry per holder, under the
 * holder's own PeerId (`by` is bound to the signer by §11.1), so a member can only speak for
 * itself: its whole list of reservations, rewritten on every reserve and release.
 */
import { z } from 'zod'
import * as r from '../reservations/constants.js'
import { globProblem } from '../reservations/globs.js'
import * as c from './constants.js'

const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v))

export const ReservationItemSchema = z
  .object({
    /** normalized remote URL (`host/path`), or `file://<host><absolute path>` without a remote */
    repo: z.string().min(1).max(r.MAX_REPO_LENGTH),
    /** '' where there is no git */
    branch: z.string().max(r.MAX_BRANCH_LENGTH),
    globs: z
      .array(
        z
          .string()
          .min(1)
          .max(r.MAX_GLOB_LENGTH)
          .refine(g => globProblem(g) == null, 'a glob that breaks the glob rules (§15.3)')
      )
      .min(1)
      .max(r.MAX_GLOBS),
    mode: z.enum(r.RESERVATION_MODES),
    reason: z.string().max(r.MAX_REASON_LENGTH),
    /** when it was made, by the holder's clock: the earlier of two overlapping reservations stands (§15.3) */
    since: time,
    /** when it ends, by the holder's clock */
    exp: time
  })
  .strict()

export const ReservationEntrySchema = z
  .object({
    list: z.array(ReservationItemSchema).max(r.MAX_RESERVATIONS),
    /** the holder's display name when it wrote (a claim, shown only where presence knows no better) */
    name: z.string().max(64),
    by: z.string().min(1).max(c.MAX_PEER_ID_LENGTH),
    at: time
  })
  .strict()
  .refine(v => jsonBytes(v) <= c.MAX_VALUE_BYTES, `over ${c.MAX_VALUE_BYTES} bytes`)

export type StoredReservationItem = z.infer<typeof ReservationItemSchema>
export type StoredReservations = z.infer<typeof ReservationEntrySchema>

/** Why `value` may not be the `reservations` entry `key`, or undefined. */
export function reservationEntryProblem(key: string, value: unknown): string | undefined {
  if (key.length === 0 || key.length > c.MAX_PEER_ID_LENGTH) return 'a reservations key that breaks its rule'
  const parsed = ReservationEntrySchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return `a reservations value that breaks its schema (${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'})`
  }
  if ((value as { by: string }).by !== key) return "a reservations entry under another member's id"
  return undefined
}
