/**
 * Whose hand-off `get_context(peer)` means (SPEC.md §17.3): `me`, a peer as `send` addresses it
 * (§8.6), or, for a session that presence no longer lists, its PeerId (or a fragment of ≥ 6
 * characters) or the name it shared under. Ambiguity is an error that lists the candidates.
 */
import { AmbiguousRecipientError, UnknownRecipientError } from '../errors.js'
import { foldName, MIN_ID_FRAGMENT, resolveTargets } from '../messaging/resolve.js'
import type { PeerInfo } from '../presence/table.js'
import { isSelf } from '../schedule/scheduler.js'
import type { HandOff, SharedContext } from './index.js'

/** The hand-off of `who`, or undefined when that peer has shared none. */
export function lookupHandOff(ctx: SharedContext, peers: PeerInfo[], selfId: string, who: string): HandOff | undefined {
  const t = who.trim()
  if (isSelf(t) || t === selfId) return ctx.get(selfId)
  const exact = ctx.get(t)
  if (exact != null) return exact
  try {
    const [r] = resolveTargets([t], peers, selfId)
    if (r?.kind === 'peer') return ctx.get(r.id)
    throw new UnknownRecipientError(`"${t.slice(0, 64)}" is a group: name one peer`)
  } catch (err) {
    if ((err as Error).name !== 'UnknownRecipientError') throw err
    const f = foldName(t)
    const hits = ctx
      .list()
      .filter(h => (f !== '' && foldName(h.name) === f) || (t.length >= MIN_ID_FRAGMENT && (h.peer.startsWith(t) || h.peer.endsWith(t))))
    if (hits.length === 1) return hits[0]
    if (hits.length > 1)
      throw new AmbiguousRecipientError(
        `"${t.slice(0, 64)}" matches ${hits.length} hand-offs: ${hits
          .slice(0, 8)
          .map(h => `${h.name} (${h.peer})`)
          .join('; ')}; use a peer id`
      )
    throw err
  }
}
