/** Control methods for scheduled messages and reminders (SPEC.md §18.4). */
import { z } from 'zod'
import { PRIORITIES } from '../messaging/constants.js'
import type { MeshNode } from '../node.js'
import { MAX_CRON_CHARS, MAX_TARGETS } from '../schedule/constants.js'
import { scheduleView } from '../schedule/record.js'
import type { ControlServer } from './server.js'

const target = z.string().min(1).max(256)

export function registerScheduleMethods (server: ControlServer, node: MeshNode): void {
  server.register('schedule.add', z.object({
    to: z.union([target, z.array(target).min(1).max(MAX_TARGETS)]),
    message: z.string(),
    priority: z.enum(PRIORITIES).optional(),
    at: z.union([z.string().max(64), z.number().int().nonnegative()]).optional(),
    in: z.string().max(32).optional(),
    cron: z.string().max(MAX_CRON_CHARS).optional()
  }).strict(), async p => ({ schedule: scheduleView(await node.schedules.add(p)) }))
  server.register('schedule.list', z.object({ all: z.boolean().optional() }).strict(), async p => ({ schedules: (await node.schedules.list(p)).map(scheduleView) }))
  server.register('schedule.cancel', z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, 'expected a 16-character schedule id') }).strict(), async p => ({ schedule: scheduleView(await node.schedules.cancel(p.id)) }))
}
