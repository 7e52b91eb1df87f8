/**
 * What a caller may write as an assignee or holder filter: empty or "open" (anyone), "me",
 * "@group", or a peer as `send` addresses it (name, handle, id or unique id fragment,
 * SPEC.md §8.6); stored as '' / '@group' / the PeerId.
 */
import { resolveTargets } from '../messaging/resolve.js'
import type { PeerInfo } from '../presence/table.js'

export function resolveAssignee (text: string, self: PeerInfo, peers: PeerInfo[]): string {
  const t = text.trim()
  if (t === '' || t.toLowerCase() === 'open') return ''
  if (t.toLowerCase() === 'me' || t === self.id || t === self.name) return self.id
  const [target] = resolveTargets([t], peers, self.id)
  return target == null ? '' : target.kind === 'group' ? `@${target.group}` : target.id
}
