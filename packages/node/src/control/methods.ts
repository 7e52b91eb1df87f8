/** The control methods a node serves (SPEC.md §7.2); the CLI and hooks call these. */
import { z } from 'zod'
import { PRIORITIES } from '../messaging/constants.js'
import { STATUSES } from '../presence/constants.js'
import { GroupSchema } from '../presence/record.js'
import type { MeshNode } from '../node.js'
import { registerContextMethods } from './context-methods.js'
import { registerScheduleMethods } from './schedule-methods.js'
import type { ControlServer } from './server.js'
import { registerTaskMethods } from './task-methods.js'
import { registerUiMethods } from './ui-methods.js'

export function registerNodeMethods (server: ControlServer, node: MeshNode): void {
  server.register('info', z.object({}), async () => node.info())
  server.register('peers', z.object({ group: z.string().max(64).optional() }), async p => ({ self: node.self(), peers: node.peers(p) }))
  server.register('presence.set', z.object({
    name: z.string().min(1).max(64).optional(),
    role: z.string().max(64).optional(),
    status: z.enum(STATUSES).optional(),
    summary: z.string().max(1024).optional(),
    groups: z.array(GroupSchema).max(32).optional()
  }).strict(), async p => node.setPresence(p))
  server.register('send', z.object({
    to: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(256)]),
    message: z.string(),
    priority: z.enum(PRIORITIES).optional(),
    replyTo: z.string().max(64).optional()
  }).strict(), async p => ({ results: await node.mail.send(p.to, p.message, { priority: p.priority, replyTo: p.replyTo }) }))
  server.register('inbox', z.object({
    limit: z.number().int().min(1).max(500).optional(),
    unreadOnly: z.boolean().optional(),
    markRead: z.boolean().optional()
  }).strict(), async p => node.mail.check(p))
  server.register('status', z.object({ id: z.string().regex(/^[0-9a-f]{32}$/, 'expected a 32-character message id') }), async p => {
    const s = await node.mail.status(p.id)
    if (s == null) throw Object.assign(new Error(`no message ${p.id} was sent from this session`), { name: 'UnknownMessageError' })
    return s
  })
  server.register('group.join', z.object({ name: GroupSchema.shape.name, role: z.string().max(64).optional() }).strict(), async p => ({ groups: await node.joinGroup(p.name, p.role) }))
  server.register('group.leave', z.object({ name: GroupSchema.shape.name }).strict(), async p => ({ groups: await node.leaveGroup(p.name) }))
  const key = z.string().min(1).max(256)
  server.register('state.get', z.object({ key }).strict(), async p => ({ entry: node.data.state.get(p.key) ?? null }))
  server.register('state.set', z.object({ key, value: z.unknown() }).strict(), async p => ({ entry: await node.data.state.set(p.key, p.value) }))
  server.register('state.list', z.object({ prefix: z.string().max(256).optional() }).strict(), async p => ({ entries: node.data.state.list(p.prefix ?? '') }))
  server.register('state.delete', z.object({ key }).strict(), async p => ({ deleted: await node.data.state.delete(p.key) }))
  server.register('memory.remember', z.object({ content: z.string(), tags: z.array(z.string()).max(16).optional() }).strict(), async p => ({ note: await node.data.memory.remember(p.content, p.tags ?? []) }))
  server.register('memory.recall', z.object({ query: z.string().max(64 * 1024), tags: z.array(z.string()).max(16).optional(), author: z.string().max(128).optional(), limit: z.number().int().min(1).max(100).optional() }).strict(), async p => ({ results: await node.data.memory.recall(p.query, p) }))
  server.register('memory.forget', z.object({ id: z.string().max(64) }).strict(), async p => ({ ok: await node.data.memory.forget(p.id) }))
  registerTaskMethods(server, node)
  registerScheduleMethods(server, node)
  registerContextMethods(server, node)
  registerUiMethods(server, node)
  server.register('replace', z.object({ record: z.string().max(16_384) }), async p => {
    const ok = await node.presence.accept(new Uint8Array(Buffer.from(p.record, 'base64')))
    return { replaced: ok }
  })
}
