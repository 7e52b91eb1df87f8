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
import { NodeStateError } from '../errors.js'
import type { MeshLibp2p } from './index.js'
import { relayBase, relayId } from './relay-addr.js'

const log = logger('claudemesh:transport')

interface TransportManager {
  listen: (addrs: Multiaddr[]) => Promise<void>
}

/**
 * libp2p's transport manager: the component that listens. It is not on libp2p's public type,
 * so an upgrade may move it; this throws at start (and in transport.test.ts) rather than
 * leaving relayed peers silently unreachable.
 */
export function transportManager(libp2p: MeshLibp2p): TransportManager {
  const tm = (libp2p as unknown as { components?: { transportManager?: Partial<TransportManager> } }).components?.transportManager
  if (typeof tm?.listen !== 'function')
    throw new NodeStateError(
      'libp2p no longer exposes components.transportManager.listen: relay reservations cannot be renewed (see transport/relay-listen.ts)'
    )
  return tm as TransportManager
}

/**
 * How long a member with relays holds its first presence record back for a reservation
 * (SPEC.md §12.2): past it, the record goes out without the relay address, as one without
 * relays would, and a second follows when the reservation comes.
 */
export const RESERVATION_WAIT_MS = 3_000

export interface RelayReservations {
  /** one more relay (with /p2p/<id>) to hold a reservation on */
  add: (addr: string) => void
  /**
   * Resolves once this node has a `/p2p-circuit` address, every reservation attempt under way
   * has failed, or `timeoutMs` passed, whichever comes first; at once without relays.
   */
  reserved: (timeoutMs: number) => Promise<void>
  stop: () => void
}

export function keepRelayReservations(libp2p: MeshLibp2p, relays: string[]): RelayReservations {
  const tm = transportManager(libp2p)
  const circuits = new Map<string, string>()
  const pending = new Set<string>()
  const waiters = new Set<() => void>()
  const hasCircuit = (): boolean => libp2p.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))
  const wake = (): void => {
    for (const w of waiters) w()
  }
  const reserve = (id: string): void => {
    const circuit = circuits.get(id)
    if (circuit == null || pending.has(id)) return
    if (libp2p.getMultiaddrs().some(a => a.toString().includes(`/p2p/${id}/p2p-circuit`))) return
    pending.add(id)
    tm.listen([multiaddr(circuit)])
      .catch(err => {
        log('listening through relay %s failed: %s', id, (err as Error).message)
      })
      .finally(() => {
        pending.delete(id)
        // libp2p announces the new address a second later (self:peer:update is debounced), but
        // it is ours as soon as the listen resolves; failed, and no other attempt under way,
        // nothing is coming
        if (hasCircuit() || pending.size === 0) wake()
      })
  }
  const add = (addr: string): void => {
    const id = relayId(addr)
    if (id == null || circuits.has(id)) return
    circuits.set(id, `${relayBase(addr)}/p2p-circuit`)
    if (libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open')) reserve(id)
  }
  for (const r of relays) add(r)
  const onOpen = (evt: CustomEvent<Connection>): void => {
    reserve(evt.detail.remotePeer.toString())
  }
  libp2p.addEventListener('connection:open', onOpen)
  const reserved = async (timeoutMs: number): Promise<void> => {
    if (circuits.size === 0 || hasCircuit()) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      waiters.add(done)
    })
  }
  return {
    add,
    reserved,
    stop: () => {
      libp2p.removeEventListener('connection:open', onOpen)
      wake()
    }
  }
}
