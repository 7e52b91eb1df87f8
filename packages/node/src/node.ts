/**
 * `MeshNode`: one session's node (create-node.ts makes one with its control API). Identity from the home, a private libp2p
 * transport, discovery, presence, the store and the control socket, under one start/stop
 * lifecycle. Never writes to stdout: in `claudemesh mcp` stdout is the MCP channel.
 */
import { hostname } from 'node:os'
import { basename } from 'node:path'
import type { Connection } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import type { z } from 'zod'
import { ControlServer } from './control/server.js'
import { Dialer } from './discovery/dialer.js'
import { GroupPeers } from './discovery/group-peers.js'
import { NoContentKeyError, NodeStateError } from './errors.js'
import { controlSocketPath, register, unregister } from './discovery/registry.js'
import { assertPrivateHome, paths } from './home.js'
import { loadMesh, type Mesh } from './identity/mesh.js'
import { presenceKey } from './identity/secrets.js'
import type { DmEvents } from './messaging/dm.js'
import { loadOrCreateSessionKey, type SessionKey } from './identity/session-key.js'
import type { PresenceTimings, PresenceStatus } from './presence/constants.js'
import { Presence, type PresenceEvents } from './presence/presence.js'
import type { Group, PresenceBody } from './presence/record.js'
import type { PeerInfo } from './presence/table.js'
import { mailboxProtocol } from './messaging/mailbox/frames.js'
import { createMessaging } from './messaging/create.js'
import { FileService } from './files/index.js'
import { flushOutbox } from './messaging/flush.js'
import { FloodGuard, type FloodLimits } from './messaging/flood.js'
import { checkLimits } from './messaging/limits.js'
import type { Messaging } from './messaging/index.js'
import { Outbox } from './messaging/outbox.js'
import { withHandles } from './messaging/resolve.js'
import type { MemoryEvents } from './memory/index.js'
import { Scheduler } from './schedule/scheduler.js'
import { openSessionStore } from './session-store.js'
import { createShared, type Shared } from './shared.js'
import { decodeSummary, encodeSummary, type SyncSummary } from './sync-summary.js'
import type { ReplicaEvents } from './state/replica.js'
import type { StateEvents } from './state/state.js'
import type { TaskEvents } from './tasks/board.js'
import { GroupCommit } from './store/commit.js'
import { flushWrites, type Store, sublevel } from './store/index.js'
import { createTransport, type MeshLibp2p } from './transport/index.js'
import { relayBase, relayId } from './transport/relay-addr.js'
import { RelayLearner } from './transport/relay-learn.js'
import { keepRelayReservations, RESERVATION_WAIT_MS, type RelayReservations } from './transport/relay-listen.js'

const log = logger('claudemesh:node')

/** How long a graceful stop tries to hand queued DMs over (SPEC.md §8.7). */
export const DEFAULT_FLUSH_MS = 3_000

export interface MeshNodeInit {
  home: string
  /** a mesh name under the home, or a loaded mesh */
  mesh: string | Mesh
  /** the Claude Code session UUID this node speaks for */
  session: string
  name?: string
  role?: string
  groups?: Group[]
  status?: PresenceStatus
  summary?: string
  cwd?: string
  kind?: 'mcp' | 'daemon'
  listen?: string[]
  bootstrap?: string[]
  /** relay multiaddrs with /p2p/<id>, on top of the mesh's (SPEC.md §12) */
  relays?: string[]
  mdns?: boolean
  /** find peers through the shared-home registry (default true) */
  registry?: boolean
  /** run kad-dht (default: when the mesh or the node has bootstrap peers or relays) */
  dht?: boolean
  /** serve the control socket (default true) */
  control?: boolean
  presence?: Partial<PresenceTimings>
  /** how long an unacknowledged DM is retried before it fails (default 7 days) */
  messageTtlMs?: number
  /** how long a graceful stop tries to hand queued DMs to their recipients or a relay (default 3 s) */
  flushMs?: number
  /**
   * Run as the courier of a session that stopped with DMs queued (SPEC.md §8.7): carry them
   * without being the session (no presence record, groups, shared state or reservation), as
   * the stopped incarnation, so that any newer incarnation of the session replaces it.
   */
  courier?: { incarnation: number }
  /** flood control: per-sender budgets, inbox caps, blocks (SPEC.md §8.8; defaults DEFAULT_LIMITS) */
  limits?: Partial<FloodLimits>
  /** the largest file this node shares or fetches (SPEC.md §16.5; default CLAUDEMESH_MAX_FILE_MB, else 100 MB) */
  maxFileBytes?: number
}

export interface MeshNodeEvents
  extends Omit<PresenceEvents, 'exchange:summary'>,
    DmEvents,
    StateEvents,
    MemoryEvents,
    TaskEvents,
    ReplicaEvents {
  'node:stopped': CustomEvent<{ reason: 'stopped' | 'replaced' }>
  /**
   * The sync on connect with a peer is done (SPEC.md §6.2): whether we pulled CRDT updates from
   * it, and the group topics we asked it for; both empty when it held nothing we lacked.
   */
  'sync:connect': CustomEvent<{ peer: string; crdt: boolean; topics: string[] }>
}

export interface MeshInfo {
  name: string
  id: string
  session: string
  mesh: string
  meshId: string
  role: string
  groups: Group[]
  status: string
  summary: string
  listenAddrs: string[]
  peersOnline: number
  peersKnown: number
  unread: number
  stateKeys: number
  memories: number
  tasks: number
  incarnation: number
  pid: number
  /**
   * the relays this node uses: connected, whether its mailbox stream is open, how many of our
   * DMs it holds for peers who are away (no receipt yet), and how many it handed us since start
   */
  relays: Array<{ addr: string; id: string; connected: boolean; mailbox: boolean; held: number; received: number }>
  /** DMs on a relay's disk without a delivery receipt yet, and DMs waiting for a relay to take them */
  held: number
  toRelay: number
  /** shared state and memory: updates refused (§11.1), waiting to be placed, and bad entries skipped from the store */
  shared: { rejected: number; waiting: number; skipped: number }
  /** DMs accepted and not yet on their recipient's or a relay's disk (what a courier carries, §8.7) */
  queued: number
  /** the flood limits this node applies to each peer (§8.8: defaults, or `--limit`) */
  limits: FloodLimits
}

export class MeshNode extends TypedEventEmitter<MeshNodeEvents> {
  mesh!: Mesh
  key!: SessionKey
  libp2p!: MeshLibp2p
  presence!: Presence
  dialer!: Dialer
  store!: Store
  /** absent on a node without the content secret (a relay) */
  messaging?: Messaging
  /** keeps each group's members connected to each other (SPEC.md §9.2) */
  private groupPeers?: GroupPeers
  shared?: Shared
  private scheduler?: Scheduler
  private fileService?: FileService
  private commit?: GroupCommit
  private control?: ControlServer
  private reservations?: RelayReservations
  private learner?: RelayLearner
  /** relays learnt from bootstrap peers after start (SPEC.md §12.1) */
  private readonly learnt: string[] = []
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  /** flood control (SPEC.md §8.8): budgets per sender; a blocked sender is hung up on and gated */
  readonly guard: FloodGuard

  /** `methods` adds the control API to the socket (create-node.ts passes the full one). */
  constructor(
    readonly init: MeshNodeInit,
    private readonly methods: (server: ControlServer, node: MeshNode) => void = () => {}
  ) {
    super()
    this.guard = new FloodGuard(checkLimits(init.limits))
    this.guard.addEventListener('flood:block', evt => {
      const { peer, until } = evt.detail
      log('blocked %s for flooding until %s', peer, new Date(until).toISOString())
      void this.libp2p?.hangUp(peerIdFromString(peer)).catch(() => {})
    })
  }

  get peerId(): string {
    return this.key.peerId.toString()
  }
  get running(): boolean {
    return this.state === 'running'
  }
  /** DMs accepted and not yet on their recipient's or a relay's disk */
  get queued(): number {
    return this.messaging?.outbox.size ?? 0
  }

  /**
   * Join the mesh. `prepare` runs once the control socket serves and before the registry entry
   * that lets hooks and the CLI find this session is written: what it registers (the MCP
   * layer's hook methods) is there for the first caller.
   */
  async start(opts: { prepare?: (node: MeshNode) => Promise<void> } = {}): Promise<void> {
    if (this.state !== 'new') throw new NodeStateError('a MeshNode starts once')
    try {
      await this.startParts(opts.prepare)
    } catch (err) {
      // leave nothing half-open: the store lock and the listeners must go with the failure
      this.state = 'running'
      await this.shutdown('stopped').catch(() => {})
      this.state = 'stopped'
      throw err
    }
  }

  private async startParts(prepare?: (node: MeshNode) => Promise<void>): Promise<void> {
    const { home } = this.init
    assertPrivateHome(home, typeof this.init.mesh === 'string' ? this.init.mesh : this.init.mesh.name)
    this.mesh = typeof this.init.mesh === 'string' ? await loadMesh(home, this.init.mesh) : this.init.mesh
    this.key = await loadOrCreateSessionKey(home, this.mesh.name, this.init.session)
    const courier = this.init.courier
    const incarnation = courier?.incarnation ?? Date.now()
    const body = this.initialBody()
    this.store = await openSessionStore({ home, mesh: this.mesh, key: this.key, incarnation, courier: courier != null })
    if (courier != null && !(await Outbox.hasQueued(sublevel(this.store, 'outbox')))) {
      // the stopping session handed everything over: nothing to carry
      await this.store.close()
      this.state = 'stopped'
      return
    }
    const relays = this.relays()
    this.libp2p = await createTransport({
      privateKey: this.key.privateKey,
      meshId: this.mesh.id,
      networkSecret: this.mesh.networkSecret,
      listen: this.init.listen,
      mdns: this.init.mdns,
      relays,
      blocked: peer => this.guard.blocked(peer),
      peerScore: peer => this.guard.score(peer),
      dht: this.init.dht ?? this.mesh.bootstrap.length + relays.length + (this.init.bootstrap?.length ?? 0) > 0
    })
    await this.libp2p.start()
    // a courier is not the session: it holds no reservation (it announces no address)
    if (courier == null) this.reservations = keepRelayReservations(this.libp2p, relays)
    this.learner = new RelayLearner(this.libp2p, {
      mailbox: mailboxProtocol(this.mesh.id),
      bootstrapAddr: id => this.dialer?.bootstrapAddr(id),
      onRelay: addr => {
        this.addRelay(addr)
      }
    })
    this.learner.start()
    this.presence = new Presence(
      { libp2p: this.libp2p, store: sublevel(this.store, 'presence') },
      {
        meshId: this.mesh.id,
        privateKey: this.key.privateKey,
        presenceKey: this.mesh.contentSecret != null ? presenceKey(this.mesh.contentSecret, this.mesh.id) : undefined,
        body,
        incarnation,
        timings: this.init.presence,
        announce: courier == null,
        // our first record waits (bounded) for the relay address it is to announce
        addressed: relays.length > 0 ? this.reservations?.reserved(RESERVATION_WAIT_MS) : undefined
      }
    )
    for (const type of ['peer:join', 'peer:update', 'peer:leave', 'presence:reject'] as const) {
      this.presence.addEventListener(type, evt => {
        this.safeDispatchEvent(type, { detail: evt.detail })
      })
    }
    for (const type of ['peer:join', 'peer:update'] as const) {
      this.presence.addEventListener(type, evt => {
        this.dialer.announce(evt.detail.id, evt.detail.addrs)
      })
    }
    // the sync on connect (SPEC.md §6.2): our summary goes first in each exchange on connect, and
    // a peer's tells us whether to ask it for group history and CRDT updates
    const syncs = this.mesh.contentSecret != null
    this.presence.summarize = async () =>
      encodeSummary({
        // a node that never runs a replica (a courier, a relay invite) holds none; one that will
        // but has not loaded it yet says nothing, and the peer pulls
        vv: courier != null || !syncs ? {} : this.shared?.replica.pullVector(),
        groups: !syncs ? {} : await this.messaging?.groups.historyDigests()
      })
    this.presence.addEventListener('exchange:summary', evt => {
      this.syncOnConnect(evt.detail.conn, evt.detail.summary)
    })
    this.presence.addEventListener('self:replaced', evt => {
      this.safeDispatchEvent('self:replaced', { detail: evt.detail })
      void this.shutdown('replaced')
    })
    this.dialer = new Dialer(this.libp2p, {
      home,
      mesh: this.mesh.name,
      // relays are bootstrap peers too: they answer presence exchanges and the DHT
      bootstrap: [...new Set([...this.mesh.bootstrap, ...(this.init.bootstrap ?? []), ...relays])],
      registry: this.init.registry,
      onBootstrap: peer => {
        this.learner?.bootstrapConnected(peer)
      },
      addrsOf: peer => this.addrsOf(peer)
    })
    this.state = 'running'
    await this.presence.start()
    this.commit = new GroupCommit(this.store)
    await this.startMessaging(courier != null ? [] : body.groups.map(g => g.name))
    if (courier == null) await this.startShared()
    if (courier == null) await this.startScheduler()
    if (courier == null) await this.startFiles()
    if (this.init.control !== false) {
      this.control = new ControlServer(controlSocketPath(home, this.mesh.name, this.peerId))
      this.methods(this.control, this)
      await this.control.start()
    }
    await prepare?.(this)
    if (this.init.registry !== false) {
      await register(home, {
        v: 1,
        peerId: this.peerId,
        pid: process.pid,
        mesh: this.mesh.name,
        session: this.key.session,
        name: body.name,
        kind: courier != null ? 'courier' : (this.init.kind ?? 'daemon'),
        addrs: this.multiaddrs(),
        control: this.control?.path ?? '',
        incarnation,
        startedAt: Date.now()
      })
    }
    await this.dialer.start()
    if (this.messaging != null && courier == null) {
      this.groupPeers = new GroupPeers(this.libp2p, this.presence, {
        groups: () => this.self().groups.map(g => g.name),
        learnWhere: async peer => this.dialer.learnWhere(peer)
      })
      this.groupPeers.start()
    }
    this.dialer.dialRemembered(this.presence.remembered(8))
    log('node %s of mesh %s started on %s', this.peerId, this.mesh.name, this.multiaddrs().join(' '))
  }

  /** Leave the mesh, after trying for at most `flushMs` to hand queued DMs over (SPEC.md §8.7). */
  async stop(opts: { flushMs?: number } = {}): Promise<void> {
    await this.shutdown('stopped', opts.flushMs ?? this.init.flushMs ?? DEFAULT_FLUSH_MS)
  }

  /** A peer's exchange on connect came: sync with it what its summary shows we lack (all of it, without one). */
  private syncOnConnect(conn: Connection, bytes?: Uint8Array): void {
    let summary: SyncSummary = {}
    try {
      if (bytes != null) summary = decodeSummary(bytes)
    } catch (err) {
      log('a sync summary from %p was refused: %s', conn.remotePeer, (err as Error).message)
    }
    const failed = (err: Error): undefined => {
      log('sync on connect with %p failed: %s', conn.remotePeer, err.message)
    }
    void Promise.all([
      this.messaging?.groups.syncOnConnect(conn, summary.groups).catch(failed),
      this.shared?.sync.pullOnConnect(conn, summary.vv).catch(failed)
    ]).then(([topics, crdt]) => {
      this.safeDispatchEvent('sync:connect', { detail: { peer: conn.remotePeer.toString(), crdt: crdt === true, topics: topics ?? [] } })
    })
  }

  /** Use one more relay, learnt from a bootstrap peer after start (SPEC.md §12.1). */
  private addRelay(addr: string): void {
    const id = relayId(addr)
    if (id == null || this.state === 'stopping' || this.state === 'stopped' || relayPeerIds(this.relays()).includes(id)) return
    log('bootstrap peer %s is a relay: using its mailbox and circuit', id)
    this.learnt.push(addr)
    this.reservations?.add(addr)
    this.messaging?.dm.addRelay(id)
  }

  private async startMessaging(groups: string[]): Promise<void> {
    if (this.mesh.contentSecret == null || this.commit == null) return
    this.messaging = await createMessaging(
      { libp2p: this.libp2p, presence: this.presence, dialer: this.dialer, store: this.store, commit: this.commit, guard: this.guard },
      {
        meshId: this.mesh.id,
        privateKey: this.key.privateKey,
        contentSecret: this.mesh.contentSecret,
        ttlMs: this.init.messageTtlMs,
        groups,
        relays: relayPeerIds(this.relays()),
        // peers sharing this home take DMs on their socket; a courier only sends (§8.9)
        local:
          this.init.registry !== false
            ? { runDir: paths.run(this.init.home, this.mesh.name), listen: this.init.courier == null }
            : undefined
      }
    )
    for (const type of ['message:receive', 'message:status', 'message:reject'] as const) {
      this.messaging.addEventListener(type, evt => {
        this.safeDispatchEvent(type, { detail: evt.detail })
      })
    }
  }

  /** Schedules fire only in the session itself, never in a courier (SPEC.md §18). */
  private async startScheduler(): Promise<void> {
    if (this.messaging == null || this.commit == null) return
    this.scheduler = new Scheduler(sublevel(this.store, 'schedule'), this.commit, this.messaging, this.presence)
    await this.scheduler.start()
  }

  /** Shared files (SPEC.md §16): served to members, fetched from them. Not in a courier. */
  private async startFiles(): Promise<void> {
    if (this.messaging == null || this.commit == null || this.mesh.contentSecret == null) return
    this.fileService = new FileService(
      {
        libp2p: this.libp2p,
        presence: this.presence,
        learnWhere: async peer => this.dialer.learnWhere(peer),
        store: this.store,
        commit: this.commit,
        messaging: this.messaging,
        groups: () => this.self().groups.map(g => g.name)
      },
      {
        home: this.init.home,
        mesh: this.mesh,
        session: this.key.session,
        privateKey: this.key.privateKey,
        contentSecret: this.mesh.contentSecret,
        maxFileBytes: this.init.maxFileBytes
      }
    )
    await this.fileService.start()
  }

  /** Shared files, or a clear error on a node that cannot message. */
  get files(): FileService['files'] {
    if (this.fileService == null)
      throw new Error(`this node has no content key for mesh "${this.mesh.name}" (a relay invite?) and cannot share files`)
    return this.fileService.files
  }

  /** Scheduled messages and reminders, or a clear error on a node that cannot message. */
  get schedules(): Scheduler {
    if (this.scheduler == null)
      throw new NoContentKeyError(
        `this node has no content key for mesh "${this.mesh.name}" (a relay invite?) and cannot schedule messages`
      )
    return this.scheduler
  }

  private async startShared(): Promise<void> {
    if (this.mesh.contentSecret == null || this.commit == null) return
    this.shared = await createShared(
      {
        libp2p: this.libp2p,
        store: this.store,
        commit: this.commit,
        snapshots: paths.snapshots(this.init.home, this.mesh.name, this.key.session)
      },
      {
        meshId: this.mesh.id,
        privateKey: this.key.privateKey,
        contentSecret: this.mesh.contentSecret,
        incarnation: this.presence.incarnation,
        selfId: this.peerId
      },
      // a holder that presence knows to be gone (goodbye, or past its TTL or grace) holds nothing (§14.3)
      {
        offline: peer => peer !== this.peerId && this.presence.get(peer)?.online === false,
        groups: () => this.self().groups.map(g => g.name)
      }
    )
    for (const type of ['task:change', 'task:lost', 'task:conflict', 'task:assigned', 'task:notice'] as const) {
      this.shared.tasks.addEventListener(type, evt => {
        this.safeDispatchEvent(type, { detail: evt.detail } as never)
      })
    }
    this.shared.tasks.start()
    for (const type of ['peer:join', 'peer:leave'] as const)
      this.presence.addEventListener(type, () => {
        this.shared?.tasks.presenceChanged()
      })
    this.shared.state.addEventListener('state:change', evt => {
      this.safeDispatchEvent('state:change', { detail: evt.detail })
    })
    this.shared.memory.addEventListener('memory:change', evt => {
      this.safeDispatchEvent('memory:change', { detail: evt.detail })
    })
    this.shared.replica.addEventListener('crdt:reject', evt => {
      this.safeDispatchEvent('crdt:reject', { detail: evt.detail })
    })
    await this.shared.sync.start()
  }

  /**
   * Where to dial a peer by id (SPEC.md §5.4): the addresses its presence record announced, or,
   * while none reached us (a DM or a file offer can outrun the record), a circuit through each
   * relay this node uses: a member behind a relay holds a reservation there.
   */
  private addrsOf(peer: string): string[] {
    const announced = this.presence.get(peer)?.addrs ?? []
    if (announced.length > 0) return announced
    return this.relays()
      .filter(r => relayId(r) !== peer)
      .map(r => `${relayBase(r)}/p2p-circuit/p2p/${peer}`)
  }

  /** The relays this node uses: the mesh's and its own flags', each with /p2p/<id>. */
  relays(): string[] {
    return [...new Set([...this.mesh.relays, ...(this.init.relays ?? []), ...this.learnt])]
  }

  /** Shared state and memory, or a clear error on a node without the content secret. */
  get data(): Pick<Shared, 'state' | 'memory' | 'tasks' | 'context' | 'reservations'> {
    if (this.shared == null)
      throw new NoContentKeyError(`this node has no content key for mesh "${this.mesh.name}" and holds no shared state`)
    return this.shared
  }

  /** The messaging layer, or a clear error on a node that holds no content secret. */
  get mail(): Messaging {
    if (this.messaging == null)
      throw new NoContentKeyError(`this node has no content key for mesh "${this.mesh.name}" (a relay invite?) and cannot message`)
    return this.messaging
  }

  /** A small persistent setting of this session (message mode…), JSON in the store. */
  async getSetting<T>(key: string): Promise<T | undefined> {
    const v = await sublevel(this.store, 'settings').get(key)
    return v == null ? undefined : (JSON.parse(Buffer.from(v).toString('utf8')) as T)
  }

  async setSetting(key: string, value: unknown): Promise<void> {
    const value_ = new TextEncoder().encode(JSON.stringify(value))
    await this.store.batch([{ type: 'put', sublevel: sublevel(this.store, 'settings'), key, value: value_ }], { sync: true })
  }

  /** The path of this node's control socket. */
  registryControlPath(): string {
    if (this.control == null) throw new NodeStateError('this node serves no control socket')
    return this.control.path
  }

  /** Add a method to this node's control socket (the MCP layer adds its hook methods). */
  registerControl<S extends z.ZodType>(
    name: string,
    schema: S,
    handler: (params: z.output<S>, signal: AbortSignal) => Promise<unknown>
  ): void {
    if (this.control == null) throw new NodeStateError('this node serves no control socket')
    this.control.register(name, schema, handler)
  }

  /** Join a group (or change the role in it): presence and subscription at once. */
  async joinGroup(name: string, role?: string): Promise<Group[]> {
    const groups = [...this.self().groups.filter(g => g.name !== name), role != null && role !== '' ? { name, role } : { name }]
    await this.setPresence({ groups })
    return groups
  }

  async leaveGroup(name: string): Promise<Group[]> {
    const groups = this.self().groups.filter(g => g.name !== name)
    await this.setPresence({ groups })
    return groups
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  self(): PeerInfo {
    return this.presence.self()
  }

  /** Known peers, each with the `handle` that addresses it in `send` (SPEC.md §8.6). */
  peers(opts: { group?: string } = {}): PeerInfo[] {
    const all = this.presence.list()
    const g = opts.group?.replace(/^@/, '')
    return withHandles(g == null ? all : all.filter(p => p.groups.some(x => x.name === g)), this.peerId, all).map(p =>
      this.withReservations(p)
    )
  }

  /** A peer with the file reservations of its that count now (SPEC.md §15.5): who touches what, where. */
  withReservations(p: PeerInfo): PeerInfo {
    const rs = this.shared?.reservations.forPeer(p.id) ?? []
    return rs.length === 0
      ? p
      : {
          ...p,
          reservations: rs.map(r => ({
            repo: r.repo,
            branch: r.branch,
            globs: r.globs,
            mode: r.mode,
            reason: r.reason,
            expiresAt: r.expiresAt
          }))
        }
  }

  /** Change what this session shows the mesh; a new group list also changes subscriptions. */
  async setPresence(patch: Partial<PresenceBody>): Promise<PeerInfo> {
    const before = this.self().groups.map(g => g.name)
    const info = await this.presence.update(patch)
    if (patch.groups != null && this.messaging != null) {
      const after = patch.groups.map(g => g.name)
      for (const g of after.filter(g => !before.includes(g))) this.messaging.groups.join(g)
      for (const g of before.filter(g => !after.includes(g))) this.messaging.groups.leave(g)
      this.groupPeers?.soon()
    }
    return info
  }

  info(): MeshInfo {
    const self = this.self()
    const peers = this.presence.list()
    return {
      name: self.name,
      id: this.peerId,
      session: this.key.session,
      mesh: this.mesh.name,
      meshId: this.mesh.id,
      role: self.role,
      groups: self.groups,
      status: self.status,
      summary: self.summary,
      listenAddrs: this.multiaddrs(),
      peersOnline: peers.filter(p => p.online).length,
      peersKnown: peers.length,
      unread: this.messaging?.inbox.unread ?? 0,
      stateKeys: this.shared?.state.size ?? 0,
      memories: this.shared?.memory.size ?? 0,
      tasks: this.shared?.tasks.size ?? 0,
      incarnation: this.presence.incarnation,
      pid: process.pid,
      relays: this.relayInfo(),
      held: this.messaging?.outbox.heldCount ?? 0,
      toRelay: this.messaging?.dm.mailbox?.queued ?? 0,
      shared: sharedCounts(this.shared),
      queued: this.queued,
      limits: this.guard.limits
    }
  }

  private relayInfo(): MeshInfo['relays'] {
    const held = this.messaging?.outbox.heldByRelay() ?? new Map<string, number>()
    const mailbox = this.messaging?.dm.mailbox
    return this.relays().map(addr => {
      const id = relayId(addr) ?? ''
      const connected = id !== '' && this.libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open')
      return {
        addr,
        id,
        connected,
        mailbox: mailbox?.hasSession(id) ?? false,
        held: held.get(id) ?? 0,
        received: mailbox?.received(id) ?? 0
      }
    })
  }

  private initialBody(): PresenceBody {
    const cwd = this.init.cwd ?? process.cwd()
    return {
      name: this.init.name ?? `${(basename(cwd) || 'session').slice(0, 58)}-${this.key.session.slice(0, 4)}`,
      role: this.init.role ?? '',
      groups: this.init.groups ?? [],
      status: this.init.status ?? 'idle',
      summary: this.init.summary ?? '',
      cwd: cwd.slice(0, 1024),
      host: hostname().slice(0, 255)
    }
  }

  private async shutdown(reason: 'stopped' | 'replaced', flushMs = 0): Promise<void> {
    if (this.state !== 'running') return
    this.state = 'stopping'
    // nothing new is sent while the queue is handed over
    this.scheduler?.stop()
    await this.fileService?.stop()
    if (flushMs > 0 && this.messaging != null) await flushOutbox(this.messaging.dm, this.messaging.outbox, flushMs).catch(() => 0)
    this.groupPeers?.stop()
    this.dialer?.stop()
    this.learner?.stop()
    this.reservations?.stop()
    await this.messaging?.dm.stop()
    await this.messaging?.groups.stop()
    this.shared?.tasks.stop()
    await this.shared?.sync.stop()
    await this.shared?.replica.snapshot().catch(() => {})
    await this.shared?.memory.persist().catch(() => {}) // derived: a lost one is rebuilt at start
    await this.presence?.stop({ goodbye: reason === 'stopped' })
    await this.control?.stop()
    if (this.init.registry !== false && this.presence != null)
      await unregister(this.init.home, this.mesh.name, this.peerId, this.presence.incarnation)
    await this.libp2p?.stop()
    if (this.store != null) await flushWrites(this.store).catch(() => {}) // the next start replays no log (§11.3)
    await this.store?.close()
    this.state = 'stopped'
    this.safeDispatchEvent('node:stopped', { detail: { reason } })
  }
}

function sharedCounts(s: Shared | undefined): MeshInfo['shared'] {
  if (s == null) return { rejected: 0, waiting: 0, skipped: 0 }
  return {
    rejected: s.replica.stats.rejected,
    waiting: s.replica.deferred,
    skipped: s.replica.stats.skipped + s.state.skipped + s.memory.skipped + s.tasks.skipped + s.context.skipped + s.reservations.skipped
  }
}

/** The peer id each relay multiaddr names; an address without one is refused where it is set. */
export function relayPeerIds(relays: string[]): string[] {
  return [...new Set(relays.map(relayId).filter((id): id is string => id != null))]
}
