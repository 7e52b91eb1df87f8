/** Control methods for context hand-off (SPEC.md §17.4). */
import { z } from 'zod'
import { checkHandOff, type HandOff, handOffText } from '../context/index.js'
import { lookupHandOff } from '../context/lookup.js'
import type { SendResult } from '../messaging/index.js'
import type { MeshNode } from '../node.js'
import { MAX_CONTEXT_DECISIONS, MAX_CONTEXT_FILES } from '../state/constants.js'
import type { ControlServer } from './server.js'

export const ContextShareParams = z
  .object({
    summary: z.string().max(256 * 1024),
    files: z
      .array(z.string().max(4096))
      .max(MAX_CONTEXT_FILES * 4)
      .optional(),
    decisions: z
      .array(z.string().max(8192))
      .max(MAX_CONTEXT_DECISIONS * 4)
      .optional(),
    to: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).min(1).max(64)]).optional()
  })
  .strict()

/** Share a hand-off: published in the mesh's `context` map, or sent as a DM when `to` is given (§17.2). */
export async function shareContext(
  node: MeshNode,
  p: z.output<typeof ContextShareParams>
): Promise<{ handOff?: HandOff; sent?: SendResult[] }> {
  if (p.to != null) {
    const h = checkHandOff(p)
    return { sent: await node.mail.send(p.to, handOffText(node.self().name, h), { priority: 'next' }) }
  }
  return { handOff: await node.data.context.share(p, node.self().name) }
}

/** One peer's latest hand-off (none: an empty list), or everyone's, newest first. */
export function getContext(node: MeshNode, peer?: string): HandOff[] {
  if (peer == null || peer.trim() === '') return node.data.context.list()
  const h = lookupHandOff(node.data.context, node.presence.list(), node.peerId, peer)
  return h == null ? [] : [h]
}

export function registerContextMethods(server: ControlServer, node: MeshNode): void {
  server.register('context.share', ContextShareParams, async p => shareContext(node, p))
  server.register('context.get', z.object({ peer: z.string().max(256).optional() }).strict(), async p => ({
    handOffs: getContext(node, p.peer)
  }))
}
