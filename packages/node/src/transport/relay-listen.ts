/**
 * Reservations on configured relays (SPEC.md §12.2). libp2p's circuit transport makes a
 * reservation on a relay named in the listen addresses once, when it starts listening; when
 * the relay's connection drops (a restart, a network change) the reservation and the
 * `/p2p-circuit` address go, and nothing makes them again. So: whenever a configured relay
 * connects and we have no address through it, listen through it again.
 */
import type { Connection } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { MeshLibp2p } from './index.js'
import { relayBase, relayId } from './relay-addr.js'

const log = logger('claudemesh:transport')

interface TransportManager { listen: (addrs: Multiaddr[]) => Promise<void> }

export function keepRelayReservations (libp2p: MeshLibp2p, relays: string[]): () => void {
  const circuits = new Map<string, string>()
  for (const r of relays) {
    const id = relayId(r)
    if (id != null) circuits.set(id, `${relayBase(r)}/p2p-circuit`)
  }
  const pending = new Set<string>()
  const onOpen = (evt: CustomEvent<Connection>): void => {
    const id = evt.detail.remotePeer.toString()
    const circuit = circuits.get(id)
    if (circuit == null || pending.has(id)) return
    if (libp2p.getMultiaddrs().some(a => a.toString().includes(`/p2p/${id}/p2p-circuit`))) return
    // the transport manager is not on libp2p's public type; it is the component that listens
    const tm = (libp2p as unknown as { components?: { transportManager?: TransportManager } }).components?.transportManager
    if (tm == null) return
    pending.add(id)
    tm.listen([multiaddr(circuit)])
      .catch(err => { log('listening through relay %s again failed: %s', id, (err as Error).message) })
      .finally(() => { pending.delete(id) })
  }
  libp2p.addEventListener('connection:open', onOpen)
  return () => { libp2p.removeEventListener('connection:open', onOpen) }
}
