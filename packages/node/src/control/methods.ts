/** The control methods a node serves (SPEC.md §7.2); the CLI and hooks call these. */
import { z } from 'zod'
import { UnknownMessageError } from '../errors.js'
import * as f from '../fields.js'
import { GroupSchema } from '../presence/record.js'
import type { MeshNode } from '../node.js'
import { registerContextMethods } from './context-methods.js'
import { registerReservationMethods } from './reservation-methods.js'
import { registerFileMethods } from './file-methods.js'
import { registerScheduleMethods } from './schedule-methods.js'
import type { ControlServer } from './server.js'
import { registerTaskMethods } from './task-methods.js'
import { registerUiMethods } from './ui-methods.js'

export function registerNodeMethods(server: ControlServer, node: MeshNode): void {
  server.register('info', z.object({}), async () => node.info())
  server.register('peers', z.object({ group: f.GroupRef.optional() }), async p => ({
    self: node.withReservations(node.self()),
    peers: node.peers(p)
  }))
  server.register(
    'presence.set',
    z
      .object({
        name: z.string().min(1).max(64).optional(),
        role: f.Role.optional(),
        status: f.Status.optional(),
        summary: z.string().max(1024).optional(),
        groups: z.array(GroupSchema).max(32).optional()
      })
      .strict(),
    async p => node.setPresence(p)
  )
  server.register(
    'send',
    z
      .object({
        to: f.Targets,
        message: z.string(),
        priority: f.Priority.optional(),
        replyTo: f.MessageId.optional()
      })
      .strict(),
    async p => ({ results: await node.mail.send(p.to, p.message, { priority: p.priority, replyTo: p.replyTo }) })
  )
  server.register(
    'inbox',
    z
      .object({
        limit: z.number().int().min(1).max(500).optional(),
        unreadOnly: z.boolean().optional(),
        markRead: z.boolean().optional()
      })
      .strict(),
    async p => node.mail.check(p)
  )
  server.register('status', z.object({ id: f.MessageId }), async p => {
    const s = await node.mail.status(p.id)
    if (s == null) throw new UnknownMessageError(`no message ${p.id} was sent from this session`)
    return s
  })
  server.register('group.join', z.object({ name: f.GroupName, role: f.Role.optional() }).strict(), async p => ({
    groups: await node.joinGroup(p.name, p.role)
  }))
  server.register('group.leave', z.object({ name: f.GroupName }).strict(), async p => ({ groups: await node.leaveGroup(p.name) }))
  server.register('state.get', z.object({ key: f.StateKey }).strict(), async p => ({ entry: node.data.state.get(p.key) ?? null }))
  server.register('state.set', z.object({ key: f.StateKey, value: z.unknown() }).strict(), async p => ({
    entry: await node.data.state.set(p.key, p.value)
  }))
  server.register('state.list', z.object({ prefix: f.StatePrefix.optional() }).strict(), async p => ({
    entries: node.data.state.list(p.prefix ?? '')
  }))
  server.register('state.delete', z.object({ key: f.StateKey }).strict(), async p => ({ deleted: await node.data.state.delete(p.key) }))
  server.register('memory.remember', z.object({ content: z.string(), tags: f.Tags.optional() }).strict(), async p => ({
    note: await node.data.memory.remember(p.content, p.tags ?? [])
  }))
  server.register(
    'memory.recall',
    z
      .object({ query: f.Query, tags: f.Tags.optional(), author: f.Author.optional(), limit: z.number().int().min(1).max(100).optional() })
      .strict(),
    async p => ({ results: await node.data.memory.recall(p.query, p) })
  )
  server.register('memory.forget', z.object({ id: f.NoteId }).strict(), async p => ({ ok: await node.data.memory.forget(p.id) }))
  registerTaskMethods(server, node)
  registerScheduleMethods(server, node)
  registerContextMethods(server, node)
  registerReservationMethods(server, node)
  registerFileMethods(server, node)
  registerUiMethods(server, node)
  server.register('replace', z.object({ record: z.string().max(16_384) }), async p => {
    const ok = await node.presence.accept(new Uint8Array(Buffer.from(p.record, 'base64')))
    return { replaced: ok }
  })
}
