/**
 * The field schemas every surface checks its input with: the control methods (control/), the
 * MCP tools (packages/mcp) and the CLI (packages/cli). One definition per field, so a limit or
 * an enum changes in one place. Names on the wire and in the tool contract differ
 * (`replyTo`, `reply_to`); the fields under them do not.
 */
import { z } from 'zod'
import { MESSAGE_MODES, PRIORITIES } from './messaging/constants.js'
import { GROUP_NAME, LIMITS, STATUSES } from './presence/constants.js'
import { GroupSchema } from './presence/record.js'
import { MAX_CRON_CHARS, MAX_TARGETS } from './schedule/constants.js'
import { MAX_KEY_LENGTH, MAX_TAG_LENGTH, MAX_TAGS } from './state/constants.js'

export { GROUP_NAME, MESSAGE_MODES }
export type { MessageMode } from './messaging/constants.js'

const hexId = (chars: number, what: string) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${chars}}$`), `a ${what} id (${chars} hex characters)`)
export const MessageId = hexId(32, 'message')
export const NoteId = hexId(16, 'memory')
export const ScheduleId = hexId(16, 'schedule')

export const Priority = z.enum(PRIORITIES)
export const Status = z.enum(STATUSES)
export const Mode = z.enum(MESSAGE_MODES)
export const GroupName = GroupSchema.shape.name
/** a group as a target or filter: `name` or `@name` */
export const GroupRef = z
  .string()
  .regex(new RegExp(`^@?${GROUP_NAME.source.slice(1, -1)}$`), 'a group name: letters, digits, ".", "_" or "-"')
export const Role = z.string().max(LIMITS.role)

/** one recipient: a handle, name, id or id fragment, `@group`, `@all` or `*` */
export const Target = z.string().min(1).max(256)
export const Targets = z.union([Target, z.array(Target).min(1).max(MAX_TARGETS)])

export const StateKey = z.string().min(1).max(MAX_KEY_LENGTH)
export const StatePrefix = z.string().max(MAX_KEY_LENGTH)
export const Tags = z.array(z.string().min(1).max(MAX_TAG_LENGTH)).max(MAX_TAGS)
/** a recall query as accepted; the engine bounds what it uses (MAX_QUERY_CHARS, SPEC.md §11.6) */
export const Query = z.string().max(64 * 1024)
export const Author = z.string().max(128)
export const Cron = z.string().max(MAX_CRON_CHARS)
