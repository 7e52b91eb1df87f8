/** The control methods a node serves (SPEC.md §7.2); the CLI and hooks call these. */
import { z } from 'zod'
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
  server.register('replace', z.object({ record: z.string().max(16_384) }), async p => {
    const ok = await node.presence.accept(new Uint8Array(Buffer.from(p.record, 'base64')))
    return { replaced: ok }
  })
}
