/** MCP tools for scheduled messages and reminders (SPEC.md §18): schedule_message, list_scheduled, cancel_scheduled. */
import { fields as f, type MeshNode, type Schedule, scheduleView } from '@claudemesh/node'
import { z } from 'zod'
import { line } from './fence.js'
import type { ToolFn } from './registrar.js'

const ScheduleOut = z.object({
  id: z.string(),
  to: z.array(z.string()),
  message: z.string(),
  priority: f.Priority,
  kind: z.enum(['once', 'cron']),
  cron: z.string().optional(),
  timezone: z.string().optional(),
  next_at: z.string().optional(),
  fired: z.number(),
  state: z.string(),
  created_at: z.string(),
  last: z
    .object({ due: z.string(), at: z.string(), results: z.array(z.object({ to: z.string(), name: z.string(), message_id: z.string() })) })
    .optional()
})

const iso = (ms: number): string => new Date(ms).toISOString()

/** The session's own schedule, with every name (some are peers') sanitized to one line. */
export function scheduleOut(s: Schedule): z.infer<typeof ScheduleOut> {
  const v = scheduleView(s)
  const out: z.infer<typeof ScheduleOut> = {
    id: v.id,
    to: v.to.map(t => line(t, 256)),
    message: v.message,
    priority: v.priority,
    kind: v.kind,
    fired: v.fired,
    state: v.state,
    created_at: iso(v.createdAt)
  }
  if (v.cron != null) out.cron = line(v.cron, 128)
  if (v.timezone != null) out.timezone = line(v.timezone, 64)
  if (v.next != null) out.next_at = iso(v.next)
  if (v.last != null)
    out.last = {
      due: iso(v.last.due),
      at: iso(v.last.at),
      results: v.last.results.map(r => ({ to: line(r.to, 80), name: line(r.name, 64), message_id: r.id }))
    }
  return out
}

const when = (s: Schedule): string =>
  s.next != null ? `${s.cron != null ? `cron "${line(s.cron, 64)}", next` : 'at'} ${iso(s.next)}` : s.state

export function registerScheduleTools(tool: ToolFn, node: MeshNode): void {
  tool(
    'schedule_message',
    'Send a message later, or repeatedly: exactly one of at (ISO 8601 time), in (a duration: 90s, 10m, 1h30m, 2d) or cron (five fields, minute first, in this machine\'s time zone). to is like send_message\'s, or "me" for a reminder to yourself (it arrives as an inbox message). Survives restarts; fires once per occurrence.',
    {
      to: f.Targets,
      message: z.string().min(1),
      at: z.string().max(64).optional(),
      in: z.string().max(32).optional(),
      cron: z.string().max(128).optional(),
      priority: f.Priority.default('next')
    },
    { schedule: ScheduleOut },
    async i => {
      const s = await node.schedules.add({ to: i.to, message: i.message, at: i.at, in: i.in, cron: i.cron, priority: i.priority })
      return {
        data: { schedule: scheduleOut(s) },
        text: `scheduled ${s.id} to ${s.to.map(t => `"${line(t, 64)}"`).join(', ')}: ${when(s)}`
      }
    }
  )

  tool(
    'list_scheduled',
    'List your scheduled messages and reminders (active ones; all: also those fired or cancelled in the last 7 days), soonest first.',
    {
      all: z.boolean().default(false)
    },
    { schedules: z.array(ScheduleOut) },
    async i => {
      const ss = await node.schedules.list({ all: i.all })
      return {
        data: { schedules: ss.map(scheduleOut) },
        text: `${ss.filter(s => s.state === 'active').length} active schedule(s)${i.all ? `, ${ss.length} listed` : ''}`
      }
    },
    true
  )

  tool(
    'cancel_scheduled',
    'Cancel one of your scheduled messages by its id (from schedule_message or list_scheduled).',
    {
      id: f.ScheduleId
    },
    { schedule: ScheduleOut },
    async i => {
      const s = await node.schedules.cancel(i.id)
      return { data: { schedule: scheduleOut(s) }, text: `cancelled ${s.id}` }
    }
  )
}
