/**
 * What a caller may write as an assignee or holder filter: empty or "open" (anyone), "me",
 * "@group", or a peer as `send` addresses it (name, handle, id or unique id fragment,
 * SPEC.md §8.6); stored as '' / '@group' / the PeerId.
 */
import { resolveTargets } from '../messaging/resolve.js'
import type { PeerInfo } from '../presence/table.js'

export function resolveAssignee(text: string, self: PeerInfo, peers: PeerInfo[]): string {
  const t = text.trim()
  if (t === '' || t.toLowerCase() === 'open') return ''
  if (t.toLowerCase() === 'me' || t === self.id || t === self.name) return self.id
  const [target] = resolveTargets([t], peers, self.id)
  return target == null ? '' : target.kind === 'group' ? `@${target.group}` : target.id
}

/** Assigned to `self` by id or through one of its `groups` (not merely open to all). */
export function assignedTo(assignee: string, self: string, groups: string[]): boolean {
  return assignee === self || (assignee.startsWith('@') && groups.includes(assignee.slice(1)))
}

/** `self` may claim a task with this assignee: open to all, or assigned to it. */
export function mayClaim(assignee: string, self: string, groups: string[]): boolean {
  return assignee === '' || assignedTo(assignee, self, groups)
}
