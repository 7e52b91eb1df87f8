/** The task board's control methods (SPEC.md §14.6); the CLI's `task` verbs call these. */
import { z } from 'zod'
import type { MeshNode } from '../node.js'
import { MAX_LEASE_MS, MIN_LEASE_MS, TASK_PRIORITIES, TASK_STATUSES } from '../tasks/constants.js'
import { resolveAssignee } from '../tasks/assignee.js'
import type { ControlServer } from './server.js'

const id = z.string().min(1).max(64)
const fields = {
  title: z.string().max(1024).optional(),
  body: z
    .string()
    .max(64 * 1024)
    .optional(),
  assignee: z.string().max(256).optional(),
  priority: z.enum(TASK_PRIORITIES).optional(),
  deps: z.array(id).max(64).optional()
}

export function registerTaskMethods(server: ControlServer, node: MeshNode): void {
  const who = (text: string | undefined): string | undefined =>
    text == null ? undefined : resolveAssignee(text, node.self(), node.presence.list())
  const deps = (refs: string[] | undefined): string[] | undefined => refs?.map(r => node.data.tasks.get(r).id)
  server.register('task.create', z.object({ ...fields, title: z.string().max(1024), watch: z.boolean().optional() }).strict(), async p => ({
    task: await node.data.tasks.create({ ...p, assignee: who(p.assignee), deps: deps(p.deps) })
  }))
  server.register('task.get', z.object({ id }).strict(), async p => ({ task: node.data.tasks.get(p.id) }))
  server.register(
    'task.list',
    z
      .object({
        status: z.enum(TASK_STATUSES).optional(),
        assignee: z.string().max(256).optional(),
        holder: z.string().max(256).optional(),
        claimable: z.boolean().optional(),
        limit: z.number().int().min(1).max(100_000).optional()
      })
      .strict(),
    async p => ({ tasks: node.data.tasks.list({ ...p, assignee: who(p.assignee), holder: who(p.holder) }) })
  )
  server.register(
    'task.claim',
    z.object({ id, ttlMs: z.number().int().min(MIN_LEASE_MS).max(MAX_LEASE_MS).optional() }).strict(),
    async p => node.data.tasks.claim(p.id, p.ttlMs)
  )
  server.register(
    'task.update',
    z
      .object({
        id,
        ...fields,
        status: z.enum(['open', 'cancelled']).optional(),
        release: z.boolean().optional(),
        watch: z.boolean().optional()
      })
      .strict(),
    async p => {
      const { id: ref, ...patch } = p
      return { task: await node.data.tasks.update(ref, { ...patch, assignee: who(patch.assignee), deps: deps(patch.deps) }) }
    }
  )
  server.register(
    'task.complete',
    z
      .object({
        id,
        result: z
          .string()
          .max(64 * 1024)
          .optional()
      })
      .strict(),
    async p => ({ task: await node.data.tasks.complete(p.id, p.result ?? '') })
  )
}
