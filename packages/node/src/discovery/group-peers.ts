/**
 * Members of a group keep connections to each other (SPEC.md §9.2). Gossipsub relays a topic
 * only among the nodes subscribed to it, and group sync asks only connected members: members
 * joined to each other only through non-members (a shared home's registry dials make a sparse
 * graph; a mesh across machines keeps a few peers each) never got each other's group messages.
 */
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Presence } from '../presence/presence.js'
import type { MeshLibp2p } from '../transport/index.js'
import { connectedPeerIds, shuffle } from './dialer.js'

const log = logger('claudemesh:discovery')

/** Each group's members a node keeps connected (or all of them, when fewer are online). */
export const GROUP_PEERS = 2
/** Presence and connection changes within this window lead to one check. */
const CHECK_DELAY_MS = 250
const DIAL_TIMEOUT_MS = 10_000

export interface GroupPeersInit {
  /** the groups this node is in, `*` (everyone) left out by the caller or here */
  groups: () => string[]
  /** put where a peer can be dialled into the peer store (`Dialer.learnWhere`) */
  learnWhere: (peer: string) => Promise<void>
}

export class GroupPeers {
  private timer?: ReturnType<typeof setTimeout>
  private readonly inflight = new Set<string>()
  private running = false

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly presence: Presence,
    private readonly init: GroupPeersInit
  ) {}

  start(): void {
    this.running = true
    this.presence.addEventListener('peer:join', this.soon)
    this.presence.addEventListener('peer:update', this.soon)
    this.libp2p.addEventListener('peer:disconnect', this.soon)
    this.soon()
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
    this.presence.removeEventListener('peer:join', this.soon)
    this.presence.removeEventListener('peer:update', this.soon)
    this.libp2p.removeEventListener('peer:disconnect', this.soon)
  }

  /** Check soon (our own groups changed, or a peer's presence or connection did). */
  readonly soon = (): void => {
    if (!this.running || this.timer != null) return
    // jittered: two members that miss each other should rarely dial each other at once
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.check()
      },
      CHECK_DELAY_MS * (1 + Math.random())
    )
    this.timer.unref()
  }

  /** For each of our groups with fewer than GROUP_PEERS members connected, dial the missing ones. */
  check(): void {
    if (!this.running) return
    const online = this.presence.list().filter(p => p.online)
    const connected = connectedPeerIds(this.libp2p)
    for (const group of this.init.groups()) {
      if (group === '*') continue
      const members = online.filter(p => p.groups.some(g => g.name === group))
      const kept = members.filter(p => this.inflight.has(p.id) || connected.has(p.id))
      const missing = Math.min(GROUP_PEERS, members.length) - kept.length
      if (missing <= 0) continue
      const unconnected = members.filter(p => !kept.includes(p))
      for (const p of shuffle(unconnected).slice(0, missing)) this.dial(p.id)
    }
  }

  /** `peer` is a presence table key: a valid peer id */
  private dial(peer: string): void {
    this.inflight.add(peer)
    void (async () => {
      await this.init.learnWhere(peer)
      await this.libp2p.dial(peerIdFromString(peer), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    })()
      .catch((err: Error) => {
        log('dialling group member %s failed: %s', peer, err.message)
      })
      .finally(() => {
        this.inflight.delete(peer)
      })
  }
}
