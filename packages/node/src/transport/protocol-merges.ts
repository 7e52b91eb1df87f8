/**
 * libp2p writes the protocol of every stream it negotiates into the peer store, on both ends:
 * `peerStore.merge(peer, { protocols: [p] })`, ~0.3 ms each (a lock, a datastore read, a
 * protobuf decode, a merge and a compare), about 11 times per end per new connection. After the
 * first such merge the peer's entry holds that protocol and the merge changes nothing. This
 * remembers, per peer, the protocols a merge or an update of the entry showed it to hold, and
 * answers a protocol-only merge they cover without touching the store. Any update of the
 * entry (identify replaces the protocol list) resets what is remembered of that peer to what
 * the entry now holds; a delete forgets the peer, and what is remembered ages out after
 * `ttlMs`, well within the peer store's own expiry (hours). Our own entry is left alone (the
 * registrar merges our protocols; its updates raise another event).
 */
import type { Libp2p, Peer, PeerId, PeerStore, PeerUpdate } from '@libp2p/interface'

const TTL_MS = 60_000
/** peers remembered; past it the memory starts over */
const MAX_PEERS = 4096

interface Known {
  protocols: Set<string>
  /** the entry as the last merge or update left it: what a merge answered from memory returns */
  peer: Peer
  at: number
}

const PATCHED = Symbol.for('claudemesh.peerStore.protocolMerges')

/** counts, for tests: merges answered from memory, merges passed on */
export interface ProtocolMergeStats {
  skipped: number
  passed: number
}

export function skipKnownProtocolMerges(libp2p: Libp2p, ttlMs = TTL_MS): ProtocolMergeStats {
  const store = libp2p.peerStore as PeerStore & Record<symbol, ProtocolMergeStats | undefined>
  const already = store[PATCHED]
  if (already != null) return already
  const stats: ProtocolMergeStats = { skipped: 0, passed: 0 }
  const known = new Map<string, Known>()
  const remember = (peer: Peer): void => {
    const id = peer.id.toString()
    if (known.size >= MAX_PEERS && !known.has(id)) known.clear()
    known.set(id, { protocols: new Set(peer.protocols), peer, at: Date.now() })
  }
  const self = libp2p.peerId.toString()
  const merge = store.merge.bind(store)
  const del = store.delete.bind(store)
  store.merge = async (id: PeerId, data, options) => {
    const protocols = data.protocols
    const peer = id.toString()
    if (protocols != null && Object.keys(data).length === 1 && peer !== self) {
      const k = known.get(peer)
      if (k != null && Date.now() - k.at < ttlMs && protocols.every(p => k.protocols.has(p))) {
        stats.skipped++
        return k.peer
      }
      stats.passed++
      const result = await merge(id, data, options)
      remember(result)
      return result
    }
    return merge(id, data, options)
  }
  store.delete = async (id: PeerId, options) => {
    known.delete(id.toString())
    await del(id, options)
  }
  libp2p.addEventListener('peer:update', (evt: CustomEvent<PeerUpdate>) => {
    const peer = evt.detail.peer
    if (known.has(peer.id.toString())) remember(peer)
  })
  store[PATCHED] = stats
  return stats
}
