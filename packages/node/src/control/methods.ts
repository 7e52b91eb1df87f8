/** The control methods a node serves (SPEC.md §7.2); the CLI and hooks call these. */
import { z } from 'zod'
import { PRIORITIES } from '../messaging/constants.js'
import { STATUSES } from '../presence/constants.js'
import { GroupSchema } from '../presence/record.js'
import type { MeshNode } from '../node.js'
import type { ControlServer } from './server.js'

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
  server.register('replace', z.object({ record: z.string().max(16_384) }), async p => {
    const ok = await node.presence.accept(new Uint8Array(Buffer.from(p.record, 'base64')))
    return { replaced: ok }
  })
}
