/**
 * Addressing (SPEC.md §8.6): a target is `@all` or `*`, `@group`, a peer id, a display name
 * (online peers first), or a unique prefix or suffix of a peer id (≥ 6 characters). Unknown and ambiguous targets are
 * errors that list the candidates; targets that resolve to the same peer collapse into one.
 */
import { AmbiguousRecipientError, InvalidMessageError, UnknownRecipientError } from '../errors.js'
import { publicKeyOfPeer } from '../identity/keys.js'
import { GROUP_NAME } from '../presence/record.js'
import type { PeerInfo } from '../presence/table.js'
import { ALL } from './groups.js'

export type Target = { kind: 'peer', id: string, name: string } | { kind: 'group', group: string }


function notYetSeen (id: string): PeerInfo {
  return { id, name: '', role: '', groups: [], status: 'idle', summary: '', cwd: '', host: '', online: false, lastSeen: 0, incarnation: 0, addrs: [], self: false }
}

const describe = (p: PeerInfo): string => `${p.name || '(no name)'} ${p.id.slice(-10)}${p.online ? '' : ' (offline)'}`

export function resolveTargets (targets: string[], peers: PeerInfo[], selfId: string): Target[] {
  const out = new Map<string, Target>()
  for (const raw of targets) {
    const t = raw.trim()
    if (t === '') throw new InvalidMessageError('empty recipient')
    if (t === '*' || t === '@all' || t === '@*') {
      out.set(`@${ALL}`, { kind: 'group', group: ALL })
      continue
    }
    if (t.startsWith('@')) {
      const group = t.slice(1)
      if (!GROUP_NAME.test(group)) throw new InvalidMessageError(`invalid group "${t}"`)
      out.set(`@${group}`, { kind: 'group', group })
      continue
    }
    const p = resolvePeer(t, peers, selfId)
    out.set(p.id, { kind: 'peer', id: p.id, name: p.name })
  }
  return [...out.values()]
}

function resolvePeer (t: string, peers: PeerInfo[], selfId: string): PeerInfo {
  if (t === selfId) throw new InvalidMessageError('that recipient is this session itself')
  const exact = peers.find(p => p.id === t)
  if (exact != null) return exact
  // the full id of a session key names exactly one peer even before its presence reached us
  // (a member that just joined, or one heard of out of band): the DM waits for it in the
  // outbox, or in a relay's mailbox (SPEC.md §8.6)
  if (publicKeyOfPeer(t) != null) return notYetSeen(t)
  const lower = t.toLowerCase()
  const named = peers.filter(p => p.name.toLowerCase() === lower)
  const onlineNamed = named.filter(p => p.online)
  const pick = onlineNamed.length > 0 ? onlineNamed : named
  if (pick.length === 1 && pick[0] != null) return pick[0]
  if (pick.length > 1) throw new AmbiguousRecipientError(`"${t}" matches ${pick.length} peers: ${pick.map(describe).join('; ')}; use a peer id`)
  if (t.length >= 6) {
    const partial = peers.filter(p => p.id.startsWith(t) || p.id.endsWith(t))
    if (partial.length === 1 && partial[0] != null) return partial[0]
    if (partial.length > 1) throw new AmbiguousRecipientError(`"${t}" matches ${partial.length} peer ids: ${partial.map(describe).join('; ')}`)
  }
  const online = peers.filter(p => p.online)
  throw new UnknownRecipientError(`no peer "${t}" in this mesh${online.length > 0 ? `; online: ${online.map(describe).join('; ')}` : ' (no peers online)'}`)
}
