/**
 * Reservations on relays (SPEC.md §12.2). libp2p's circuit transport makes a reservation on a
 * relay named in the listen addresses once, when it starts listening; when the relay's
 * connection drops (a restart, a network change) the reservation and the `/p2p-circuit`
 * address go, and nothing makes them again. So: whenever a relay we use connects and we have
 * no address through it, listen through it again. Relays learnt after start (a bootstrap peer
 * that turns out to be one, §12.1) are added while connected: listen through them at once.
 */
import type { Connection } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { MeshLibp2p } from './index.js'
import { relayBase, relayId } from './relay-addr.js'

const log = logger('claudemesh:transport')

interface TransportManager { listen: (addrs: Multiaddr[]) => Promise<void> }

export interface RelayReservations {
  /** one more relay (with /p2p/<id>) to hold a reservation on */
  add: (addr: string) => void
  stop: () => void
}

export function keepRelayReservations (libp2p: MeshLibp2p, relays: string[]): RelayReservations {
  const circuits = new Map<string, string>()
  const pending = new Set<string>()
  const reserve = (id: string): void => {
    const circuit = circuits.get(id)
    if (circuit == null || pending.has(id)) return
    if (libp2p.getMultiaddrs().some(a => a.toString().includes(`/p2p/${id}/p2p-circuit`))) return
    // the transport manager is not on libp2p's public type; it is the component that listens
    const tm = (libp2p as unknown as { components?: { transportManager?: TransportManager } }).components?.transportManager
    if (tm == null) return
    pending.add(id)
    tm.listen([multiaddr(circuit)])
      .catch(err => { log('listening through relay %s failed: %s', id, (err as Error).message) })
      .finally(() => { pending.delete(id) })
  }
  const add = (addr: string): void => {
    const id = relayId(addr)
    if (id == null || circuits.has(id)) return
    circuits.set(id, `${relayBase(addr)}/p2p-circuit`)
    if (libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open')) reserve(id)
  }
  for (const r of relays) add(r)
  const onOpen = (evt: CustomEvent<Connection>): void => { reserve(evt.detail.remotePeer.toString()) }
  libp2p.addEventListener('connection:open', onOpen)
  return { add, stop: () => { libp2p.removeEventListener('connection:open', onOpen) } }
}
