/**
 * Finds and keeps peers (SPEC.md §5): the shared-home registry (watched), `--bootstrap`
 * multiaddrs with or without `/p2p/<id>` (redialled while disconnected), mDNS answers,
 * addresses remembered from earlier runs (dialled once at start), and kad-dht peer routing for a peer we know of
 * but are not connected to.
 */
import { existsSync, type FSWatcher, watch } from 'node:fs'
import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { ensureDir, paths } from '../home.js'
import type { MeshLibp2p } from '../transport/index.js'
import { listRunning, registryFile } from './registry.js'

const log = logger('claudemesh:discovery')

/**
 * Older peers of the same home a node keeps connected through the registry in its first
 * `SETTLE_MS` (SPEC.md §5.1); gossip reaches the rest. Each connection costs both ends a PSK +
 * Noise + identify handshake (25–80 ms of CPU on a loaded 2-core machine). One each makes a
 * home larger than `FULL_MESH_HOME` that starts together a tree hanging from its first nodes:
 * connected, with few handshakes (50 starting together are all online in 3.7–4.3 s instead of
 * 5.1–5.7 s with two, on 25 % less CPU). A node whose older peer goes away scans again at once:
 * on one machine the dying process's sockets close with it, so the cut lasts a scan and a dial.
 */
export const MAX_REGISTRY_DIALS = 1
/**
 * Older peers kept once a node has run `SETTLE_MS`: a tree has no second path, and a node
 * that hangs with its sockets open (a `claude` session suspended with Ctrl-Z stops its MCP
 * server too) cut the nodes that hung from it off from gossip until the ping timeout. With two
 * older peers each, no one node's hang or death cuts anyone off.
 */
export const SETTLED_REGISTRY_DIALS = 2
/** How long after its start a node keeps its second older peer, jittered ×[1, 1.5) (SPEC.md §5.1). */
export const SETTLE_MS = 60_000
/**
 * A home of at most this many nodes is fully connected (a node that finds so few entries dials
 * every older one): a few handshakes, and a claim's settle pulls and every sync reach everyone
 * directly.
 */
export const FULL_MESH_HOME = 4
/**
 * Peers that mDNS answers and addresses learned from presence (§5.3, §5.4) are dialled while
 * a node has fewer connected peers than this: discovery keeps a few, not all. Not peers of the
 * node's own home: the registry keeps those (a second one each would undo its tree).
 */
export const MAX_DISCOVERY_PEERS = 2
/** Registry change events within this window lead to one scan (SPEC.md §5.1). */
export const REGISTRY_SCAN_DELAY_MS = 50
/** After a failed registry dial, scan again this long later, jittered ×[0.5, 1.5) (SPEC.md §5.1). */
export const REGISTRY_RETRY_MS = 1_000
/** Peers whose announced addresses are remembered as written (`Dialer.announce`); past it the memory starts over. */
const MAX_ANNOUNCED = 4096

export interface DialerInit {
  home: string
  mesh: string
  bootstrap: string[]
  /** use the shared-home registry (default true) */
  registry?: boolean
  /** how often to re-check bootstrap peers and rescan the registry */
  intervalMs?: number
  /** a dial of a bootstrap address reached this peer */
  onBootstrap?: (peer: PeerId) => void
  /** where a peer can be dialled (its record's addresses, else circuits through our relays): `connect` learns them first */
  addrsOf?: (peer: string) => string[]
}

export class Dialer {
  private readonly bootstrap: Multiaddr[]
  private watcher?: FSWatcher
  private timer?: ReturnType<typeof setInterval>
  private readonly inflight = new Set<string>()
  /** the peer a bare bootstrap address (no /p2p/) turned out to be */
  private readonly bootstrapPeers = new Map<string, string>()
  private running = false
  /** peers with at least one open connection, kept by peer:connect/disconnect: `getPeers()` builds a set per call, and presence asks per join of every peer */
  private connectedPeers = 0

  constructor(
    private readonly libp2p: MeshLibp2p,
    private readonly init: DialerInit
  ) {
    this.bootstrap = init.bootstrap.map(a => multiaddr(a))
  }

  async start(): Promise<void> {
    this.running = true
    this.connectedPeers = this.libp2p.getPeers().length
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    if (this.init.registry !== false) {
      const dir = paths.run(this.init.home, this.init.mesh)
      await ensureDir(dir)
      this.watcher = watch(dir, { persistent: false }, (_evt, file) => {
        if (file?.endsWith('.json') === true) this.scanSoon()
      })
      this.watcher.on('error', err => {
        log('registry watch failed: %s', err.message)
      })
      await this.scanRegistry()
      this.settleTimer = setTimeout(
        () => {
          this.settle()
        },
        SETTLE_MS * (1 + Math.random() / 2)
      )
      this.settleTimer.unref()
    }
    this.dialBootstrap()
    this.timer = setInterval(() => {
      this.dialBootstrap()
      if (this.init.registry !== false) void this.scanRegistry()
    }, this.init.intervalMs ?? 5_000)
    this.timer.unref()
  }

  stop(): void {
    this.running = false
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    clearTimeout(this.redial)
    clearTimeout(this.scanTimer)
    clearTimeout(this.retryTimer)
    clearTimeout(this.settleTimer)
    this.watcher?.close()
    clearInterval(this.timer)
  }

  /** Dial a peer by id: known addresses first, then the DHT. Resolves when connected. */
  async connect(peer: PeerId | string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
    if (this.libp2p.getConnections(id).length > 0) return
    await this.learnWhere(id.toString())
    try {
      await this.libp2p.dial(id, opts)
      return
    } catch (err) {
      log('direct dial of %p failed (%s); asking the DHT', id, (err as Error).message)
    }
    if (this.libp2p.services.dht == null)
      throw new Error(`cannot reach ${id.toString()}: no known address and no DHT in this mesh (add a bootstrap peer or a relay)`)
    const info = await this.libp2p.peerRouting.findPeer(id, opts)
    await this.libp2p.peerStore.merge(id, { multiaddrs: info.multiaddrs })
    await this.libp2p.dial(id, opts)
  }

  /**
   * Redial peers remembered from earlier runs at their last announced addresses. Not peers
   * reachable only through a relay: each would be a circuit through it, beyond discovery's
   * budget, at every restart; presence through the relay brings them back to discovery.
   */
  dialRemembered(peers: Array<{ id: string; addrs: string[] }>): void {
    for (const p of peers) {
      if (p.addrs.length === 0 || relayedOnly(p.addrs)) continue
      void this.dialOnce(p.id, async () => {
        await this.learn(p.id, p.addrs)
        await this.libp2p.dial(peerIdFromString(p.id), { signal: AbortSignal.timeout(5_000) })
      })
    }
  }

  /** Put addresses of a peer in the peer store, so a dial by id can use them. */
  async learn(peer: string, addrs: string[]): Promise<void> {
    try {
      await this.libp2p.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map(a => multiaddr(a)) })
    } catch (err) {
      log('ignoring addresses of %s: %s', peer, (err as Error).message)
    }
  }

  /**
   * Put where a peer can be dialled (`addrsOf`: its record's addresses, else circuits through
   * our relays) in the peer store before a dial by id: presence writes a peer's addresses only
   * while discovery could dial it (`announce`, SPEC.md §5.4).
   */
  async learnWhere(peer: string): Promise<void> {
    const addrs = this.init.addrsOf?.(peer) ?? []
    if (addrs.length > 0) await this.learn(peer, addrs)
  }

  /** the addresses `announced` last put in the peer store, per peer */
  private readonly announced = new Map<string, string>()

  /**
   * Addresses a peer announced in presence (SPEC.md §5.4): written only while discovery could
   * dial it (fewer peers than `MAX_DISCOVERY_PEERS`, and not of this home), when they are news and the peer is not
   * connected (identify wrote its addresses then). A peer-store write per presence event of
   * every peer was a tenth of a 50-node mesh's start-up CPU; a DM or file dial learns the
   * addresses it needs itself.
   */
  announce(peer: string, addrs: string[]): void {
    const key = addrs.join(' ')
    if (addrs.length === 0 || this.announced.get(peer) === key) return
    if (!this.discovering() || this.inHome(peer)) return
    let id: PeerId
    try {
      id = peerIdFromString(peer)
    } catch {
      return
    }
    if (this.libp2p.getConnections(id).length > 0) return
    if (this.announced.size >= MAX_ANNOUNCED) this.announced.clear()
    this.announced.set(peer, key)
    void this.learn(peer, addrs)
  }

  /**
   * The address of a bootstrap peer, ending in `/p2p/<id>` (a bare address gets the id it was
   * found to have), or undefined when `peer` is not one of the bootstrap peers.
   */
  bootstrapAddr(peer: string): string | undefined {
    for (const ma of this.bootstrap) {
      const key = ma.toString()
      const named = ma.getComponents().find(c => c.name === 'p2p')?.value
      if (named === peer) return key
      if (named == null && this.bootstrapPeers.get(key) === peer) return `${key}/p2p/${peer}`
    }
    return undefined
  }

  private redial?: ReturnType<typeof setTimeout>

  /** Whether discovery still dials: fewer peers connected or being dialled than its budget. */
  private discovering(): boolean {
    return this.connectedPeers + this.inflight.size < MAX_DISCOVERY_PEERS
  }

  /** Whether `peer` has an entry in this home's registry (one stat; discovery events are few). */
  private inHome(peer: string): boolean {
    return this.init.registry !== false && existsSync(registryFile(this.init.home, this.init.mesh, peer))
  }

  private readonly onConnect = (): void => {
    this.connectedPeers++
  }

  /**
   * An older registry peer went away: scan now, not at the next 5 s round (its subtree of the
   * home waits on this node's next dial). A bootstrap peer (a relay) dropped us: dial it again
   * soon.
   */
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.connectedPeers = Math.max(0, this.connectedPeers - 1)
    const id = evt.detail.toString()
    if (this.older.has(id)) this.scanSoon()
    const known =
      [...this.bootstrapPeers.values()].includes(id) ||
      this.bootstrap.some(ma => ma.getComponents().some(c => c.name === 'p2p' && c.value === id))
    if (!known || this.redial != null || !this.running) return
    this.redial = setTimeout(
      () => {
        this.redial = undefined
        this.dialBootstrap()
      },
      250 + Math.random() * 500
    )
    this.redial.unref()
  }

  private readonly onDiscovery = (evt: CustomEvent<{ id: PeerId; multiaddrs: Multiaddr[] }>): void => {
    const { id, multiaddrs } = evt.detail
    if (id.equals(this.libp2p.peerId) || this.libp2p.getConnections(id).length > 0) return
    // discovery (mDNS, or addresses we learned from presence) keeps a few peers, not all:
    // presence and gossipsub reach the rest, and DMs dial their recipient on demand
    if (!this.discovering() || this.inHome(id.toString())) return
    // no address at all would make the dial a DHT query: not worth it for discovery
    if (multiaddrs.length === 0) return
    // the event comes from the peer store taking these addresses (libp2p 3 raises it on
    // nothing else): they are there already, a dial by id uses them
    void this.dialOnce(id.toString(), async () => {
      await this.libp2p.dial(id)
    })
  }

  private scanTimer?: ReturnType<typeof setTimeout>
  private retryTimer?: ReturnType<typeof setTimeout>
  /** the entries the last registry scan took (older than this node) */
  private older = new Set<string>()

  /** how many of them the last scan meant to keep connected */
  private keep = 0
  /** older entries a scan keeps in a home larger than `FULL_MESH_HOME`: one at first, two once settled */
  private limit = MAX_REGISTRY_DIALS
  private settleTimer?: ReturnType<typeof setTimeout>

  /** The node has run `SETTLE_MS`: it keeps a second older peer from now on, dialled at once. */
  private settle(): void {
    this.limit = SETTLED_REGISTRY_DIALS
    void this.scanRegistry(true)
  }

  /** How many of those are connected or being dialled: what a scan counts against its budget. */
  private olderKept(connected: Set<string>): number {
    let n = 0
    for (const id of this.older) if (this.inflight.has(id) || connected.has(id)) n++
    return n
  }

  /**
   * Registry changes come in bursts (many sessions starting at once, each writing its entry
   * with a rename): one scan for a burst. Every node reads every entry per scan, so a scan per
   * event cost a home of N starting nodes N³ file reads.
   */
  private scanSoon(): void {
    if (this.scanTimer != null || !this.running) return
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined
      void this.scanRegistry()
    }, REGISTRY_SCAN_DELAY_MS)
    this.scanTimer.unref()
  }

  /**
   * A registry dial failed (the peer was stopping, or too loaded to finish a handshake): try
   * another entry soon rather than at the next 5 s round. Jittered, so nodes that lost the
   * same peer do not rescan in step.
   */
  private rescanAfterFailure(): void {
    if (this.retryTimer != null || !this.running) return
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined
        void this.scanRegistry()
      },
      REGISTRY_RETRY_MS * (0.5 + Math.random())
    )
    this.retryTimer.unref()
  }

  /** `force`: read the registry even when the entries taken last are all kept (the budget grew). */
  private async scanRegistry(force = false): Promise<void> {
    if (!this.running) return
    // the older entries of the last scan are enough peers already, or all there are (entries
    // written later are newer, and the newer node dials): the registry need not be read. A
    // node that took no older entry reads it again: an older one's write may have been late
    const connected = connectedPeerIds(this.libp2p)
    const kept = this.olderKept(connected)
    if (!force && kept > 0 && kept >= this.keep) return
    const self = this.libp2p.peerId.toString()
    const all = await listRunning(this.init.home, this.init.mesh)
    const own = all.find(e => e.peerId === self)
    // the newer node dials the older ones, so a pair never dials each other at once; equal
    // start times go by PeerId, so that the order is total: two nodes started in the same ms
    // that each took the other as older were a pair that dialled nobody older (two homes in
    // one). An entry with no address (a node listening on nothing) is reached through relays only
    const entries = all.filter(e => e.peerId !== self && e.addrs.length > 0 && (own == null || startedBefore(e, own)))
    this.older = new Set(entries.map(e => e.peerId))
    this.keep = all.length <= FULL_MESH_HOME ? entries.length : Math.min(this.limit, entries.length)
    const unconnected = entries.filter(e => !connected.has(e.peerId) && !this.inflight.has(e.peerId))
    const budget = Math.max(0, this.keep - (entries.length - unconnected.length))
    for (const e of shuffle(unconnected).slice(0, budget)) {
      void this.dialOnce(e.peerId, async () => {
        const id = peerIdFromString(e.peerId)
        await this.libp2p.peerStore.merge(id, { multiaddrs: e.addrs.map(a => multiaddr(a)) })
        try {
          await this.libp2p.dial(id)
        } catch (err) {
          this.rescanAfterFailure()
          throw err
        }
      })
    }
  }

  private dialBootstrap(): void {
    if (!this.running) return
    const now = Date.now()
    for (const ma of this.bootstrap) {
      const key = ma.toString()
      const id = ma.getComponents().find(c => c.name === 'p2p')?.value ?? this.bootstrapPeers.get(key)
      if (id === this.libp2p.peerId.toString()) continue
      if (id != null && this.libp2p.getConnections(peerIdFromString(id)).length > 0) continue
      // a peer (a relay) that failed us waits: 1 s doubling to 60 s, jittered, so a mesh of
      // members does not redial a busy relay in lockstep and bury it under handshakes
      const backoff = this.failures.get(key)
      if (backoff != null && now < backoff.until) continue
      void this.dialOnce(key, async () => {
        try {
          const conn = await this.libp2p.dial(ma)
          this.bootstrapPeers.set(key, conn.remotePeer.toString())
          this.failures.delete(key)
          this.init.onBootstrap?.(conn.remotePeer)
        } catch (err) {
          const n = (this.failures.get(key)?.n ?? 0) + 1
          this.failures.set(key, { n, until: Date.now() + Math.min(60_000, 500 * 2 ** n) * (0.5 + Math.random()) })
          throw err
        }
      })
    }
  }

  /** consecutive failed dials of each bootstrap address, and when to try it again */
  private readonly failures = new Map<string, { n: number; until: number }>()

  private async dialOnce(key: string, dial: () => Promise<void>): Promise<void> {
    if (this.inflight.has(key) || !this.running) return
    this.inflight.add(key)
    try {
      await dial()
    } catch (err) {
      log('dial %s failed: %s', key, (err as Error).message)
    } finally {
      this.inflight.delete(key)
    }
  }
}

/** Whether registry entry `a` counts as older than `b`: started earlier, or in the same ms with the lower PeerId. */
export function startedBefore(a: { startedAt: number; peerId: string }, b: { startedAt: number; peerId: string }): boolean {
  return a.startedAt < b.startedAt || (a.startedAt === b.startedAt && a.peerId < b.peerId)
}

/** Whether every one of these addresses goes through a relay (`/p2p-circuit`). */
export function relayedOnly(addrs: string[]): boolean {
  return addrs.length > 0 && addrs.every(a => a.includes('/p2p-circuit'))
}

/**
 * The peers this node has a connection to, by PeerId string. A node has a few connections
 * and is asked about up to a home's worth of peers (its older registry entries, a group's
 * members): parsing each one's PeerId to ask libp2p (~40 µs) was most of an idle node's 5 s
 * round in a home of 100.
 */
export function connectedPeerIds(libp2p: Pick<MeshLibp2p, 'getConnections'>): Set<string> {
  const out = new Set<string>()
  for (const c of libp2p.getConnections()) out.add(c.remotePeer.toString())
  return out
}

/** A shuffled copy (Fisher–Yates). */
export function shuffle<T>(xs: T[]): T[] {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = a[i] as T
    a[i] = a[j] as T
    a[j] = t
  }
  return a
}
