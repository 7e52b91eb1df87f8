/** Control methods for scheduled messages and reminders (SPEC.md §18.4). */
import { z } from 'zod'
import * as f from '../fields.js'
import type { MeshNode } from '../node.js'
import { scheduleView } from '../schedule/record.js'
import type { ControlServer } from './server.js'

export function registerScheduleMethods(server: ControlServer, node: MeshNode): void {
  server.register(
    'schedule.add',
    z
      .object({
        to: f.Targets,
        message: z.string(),
        priority: f.Priority.optional(),
        at: z.union([z.string().max(64), z.number().int().nonnegative()]).optional(),
        in: z.string().max(32).optional(),
        cron: f.Cron.optional()
      })
      .strict(),
    async p => ({ schedule: scheduleView(await node.schedules.add(p)) })
  )
  server.register('schedule.list', z.object({ all: z.boolean().optional() }).strict(), async p => ({
    schedules: (await node.schedules.list(p)).map(scheduleView)
  }))
  server.register('schedule.cancel', z.object({ id: f.ScheduleId }).strict(), async p => ({
    schedule: scheduleView(await node.schedules.cancel(p.id))
  }))
}
