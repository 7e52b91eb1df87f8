/**
 * Relays learnt from bootstrap peers (SPEC.md §12.1): a bootstrap peer whose identify answer
 * lists both the circuit relay hop protocol and this mesh's mailbox protocol is a relay, and
 * is used as one (mailbox, reservation) as if it had been given with `--relay`. Only
 * bootstrap peers count: they are the entry points the user named; any other member could
 * announce the same protocols. (A relay that lies can only delay or drop sealed DMs, §12.)
 */
import type { IdentifyResult, PeerId } from '@libp2p/interface'
import type { MeshLibp2p } from './index.js'

/** The circuit relay v2 server's protocol: a peer that serves it can hold reservations. */
export const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

export interface RelayLearnerInit {
  /** the mesh's mailbox protocol id */
  mailbox: string
  /** the relay address (with /p2p/<id>) of a connected bootstrap peer, else undefined */
  bootstrapAddr: (peer: string) => string | undefined
  /** a relay not in use yet */
  onRelay: (addr: string) => void
}

export class RelayLearner {
  /** relays by protocol that were not (yet) known as bootstrap peers when they identified */
  private readonly unplaced = new Set<string>()

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly init: RelayLearnerInit
  ) {}

  start(): void {
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
  }

  stop(): void {
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.unplaced.clear()
  }

  /** A bootstrap dial reached `peer`: its identify may have come first. */
  bootstrapConnected(peer: PeerId): void {
    const id = peer.toString()
    if (!this.unplaced.has(id)) return
    const addr = this.init.bootstrapAddr(id)
    if (addr == null) return
    this.unplaced.delete(id)
    this.init.onRelay(addr)
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const { peerId, protocols } = evt.detail
    if (!protocols.includes(RELAY_HOP_PROTOCOL) || !protocols.includes(this.init.mailbox)) return
    const id = peerId.toString()
    const addr = this.init.bootstrapAddr(id)
    if (addr == null) {
      // bounded: members could all announce these protocols
      if (this.unplaced.size < 64) this.unplaced.add(id)
      return
    }
    this.init.onRelay(addr)
  }
}
