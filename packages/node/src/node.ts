/**
 * `createMeshNode(init)`: one session's node. Identity from the home, a private libp2p
 * transport, discovery, presence, the store and the control socket, under one start/stop
 * lifecycle. Never writes to stdout: in `claudemesh mcp` stdout is the MCP channel.
 */
import { hostname } from 'node:os'
import { basename } from 'node:path'
import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { z } from 'zod'
import { ControlClient } from './control/client.js'
import { ControlServer } from './control/server.js'
import { Dialer } from './discovery/dialer.js'
import { controlSocketPath, listRunning, register, unregister } from './discovery/registry.js'
import { paths } from './home.js'
import { loadMesh, type Mesh } from './identity/mesh.js'
import { presenceKey } from './identity/secrets.js'
import type { DmEvents } from './messaging/dm.js'
import { loadOrCreateSessionKey, type SessionKey } from './identity/session-key.js'
import type { PresenceTimings, PresenceStatus } from './presence/constants.js'
import { Presence, type PresenceEvents } from './presence/presence.js'
import { signRecord, type Group, type PresenceBody } from './presence/record.js'
import type { PeerInfo } from './presence/table.js'
import { registerNodeMethods } from './control/methods.js'
import { DirectMessages } from './messaging/dm.js'
import { Groups } from './messaging/groups.js'
import { Inbox } from './messaging/inbox.js'
import { Messaging } from './messaging/index.js'
import { Outbox } from './messaging/outbox.js'
import { type MemoryEvents, SharedMemory } from './memory/index.js'
import { updateKey } from './state/envelope.js'
import { LevelLog } from './state/log.js'
import { Replica } from './state/replica.js'
import { SharedState, type StateEvents } from './state/state.js'
import { CrdtSync } from './state/sync.js'
import { GroupCommit } from './store/commit.js'
import { openStore, type Store, sublevel } from './store/index.js'
import { createTransport, type MeshLibp2p } from './transport/index.js'

const log = logger('claudemesh:node')

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
}

export interface MeshNodeEvents extends PresenceEvents, DmEvents, StateEvents, MemoryEvents {
  'node:stopped': CustomEvent<{ reason: 'stopped' | 'replaced' }>
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
  incarnation: number
  pid: number
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
  shared?: { replica: Replica, sync: CrdtSync, state: SharedState, memory: SharedMemory }
  private commit?: GroupCommit
  private control?: ControlServer
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'

  constructor (readonly init: MeshNodeInit) {
    super()
  }

  get peerId (): string { return this.key.peerId.toString() }
  get running (): boolean { return this.state === 'running' }

  async start (): Promise<void> {
    if (this.state !== 'new') throw new Error('a MeshNode starts once')
    try {
      await this.startParts()
    } catch (err) {
      // leave nothing half-open: the store lock and the listeners must go with the failure
      this.state = 'running'
      await this.shutdown('stopped').catch(() => {})
      this.state = 'stopped'
      throw err
    }
  }

  private async startParts (): Promise<void> {
    const { home } = this.init
    this.mesh = typeof this.init.mesh === 'string' ? await loadMesh(home, this.init.mesh) : this.init.mesh
    this.key = await loadOrCreateSessionKey(home, this.mesh.name, this.init.session)
    const incarnation = Date.now()
    const body = this.initialBody()
    await this.replaceOlderIncarnations(incarnation)
    this.store = await openStore(paths.data(home, this.mesh.name, this.key.session), { lockWaitMs: 10_000 })
    this.libp2p = await createTransport({
      privateKey: this.key.privateKey,
      meshId: this.mesh.id,
      networkSecret: this.mesh.networkSecret,
      listen: this.init.listen,
      mdns: this.init.mdns,
      relays: this.mesh.relays,
      dht: this.init.dht ?? (this.mesh.bootstrap.length + this.mesh.relays.length + (this.init.bootstrap?.length ?? 0) > 0)
    })
    await this.libp2p.start()
    this.presence = new Presence({ libp2p: this.libp2p, store: sublevel(this.store, 'presence') }, {
      meshId: this.mesh.id,
      privateKey: this.key.privateKey,
      presenceKey: this.mesh.contentSecret != null ? presenceKey(this.mesh.contentSecret, this.mesh.id) : undefined,
      body,
      incarnation,
      timings: this.init.presence
    })
    for (const type of ['peer:join', 'peer:update', 'peer:leave', 'presence:reject'] as const) {
      this.presence.addEventListener(type, evt => { this.safeDispatchEvent(type, { detail: evt.detail }) })
    }
    for (const type of ['peer:join', 'peer:update'] as const) {
      this.presence.addEventListener(type, evt => { void this.dialer.learn(evt.detail.id, evt.detail.addrs) })
    }
    this.presence.addEventListener('self:replaced', evt => {
      this.safeDispatchEvent('self:replaced', { detail: evt.detail })
      void this.shutdown('replaced')
    })
    this.dialer = new Dialer(this.libp2p, {
      home,
      mesh: this.mesh.name,
      bootstrap: [...this.mesh.bootstrap, ...(this.init.bootstrap ?? [])],
      registry: this.init.registry
    })
    this.state = 'running'
    await this.presence.start()
    this.commit = new GroupCommit(this.store)
    await this.startMessaging(body.groups.map(g => g.name))
    await this.startShared()
    if (this.init.control !== false) {
      this.control = new ControlServer(controlSocketPath(home, this.mesh.name, this.peerId))
      registerNodeMethods(this.control, this)
      await this.control.start()
    }
    if (this.init.registry !== false) {
      await register(home, {
        v: 1,
        peerId: this.peerId,
        pid: process.pid,
        mesh: this.mesh.name,
        session: this.key.session,
        name: body.name,
        kind: this.init.kind ?? 'daemon',
        addrs: this.multiaddrs(),
        control: this.control?.path ?? '',
        incarnation,
        startedAt: Date.now()
      })
    }
    await this.dialer.start()
    this.dialer.dialRemembered(this.presence.remembered(8))
    log('node %s of mesh %s started on %s', this.peerId, this.mesh.name, this.multiaddrs().join(' '))
  }

  async stop (): Promise<void> {
    await this.shutdown('stopped')
  }

  private async startMessaging (groups: string[]): Promise<void> {
    if (this.mesh.contentSecret == null || this.commit == null) return
    const commit = this.commit
    const inbox = new Inbox(sublevel(this.store, 'inbox'), commit)
    const outbox = new Outbox(sublevel(this.store, 'outbox'), commit)
    await inbox.start()
    await outbox.start()
    const init = { meshId: this.mesh.id, privateKey: this.key.privateKey, contentSecret: this.mesh.contentSecret }
    const dm = new DirectMessages({ libp2p: this.libp2p, presence: this.presence, dialer: this.dialer, inbox, outbox }, { ...init, ttlMs: this.init.messageTtlMs })
    const gs = new Groups({ libp2p: this.libp2p, presence: this.presence, inbox, history: sublevel(this.store, 'groups') }, init)
    this.messaging = new Messaging(dm, gs, inbox, outbox, this.presence)
    for (const type of ['message:receive', 'message:status', 'message:reject'] as const) {
      this.messaging.addEventListener(type, evt => { this.safeDispatchEvent(type, { detail: evt.detail }) })
    }
    await dm.start()
    await gs.start(groups)
  }

  private async startShared (): Promise<void> {
    if (this.mesh.contentSecret == null || this.commit == null) return
    const log = new LevelLog(sublevel(this.store, 'crdt'), this.commit)
    await log.open()
    const replica = new Replica(this.mesh.id, this.key.privateKey, updateKey(this.mesh.contentSecret, this.mesh.id), this.presence.incarnation, log, this.peerId)
    await replica.load()
    const sync = new CrdtSync(this.libp2p, replica, this.mesh.id)
    const publish = (env: Uint8Array): void => { sync.publish(env) }
    const state = new SharedState(replica, publish)
    state.addEventListener('state:change', evt => { this.safeDispatchEvent('state:change', { detail: evt.detail }) })
    const memory = new SharedMemory(replica, publish)
    memory.addEventListener('memory:change', evt => { this.safeDispatchEvent('memory:change', { detail: evt.detail }) })
    this.shared = { replica, sync, state, memory }
    await sync.start()
  }

  /** Shared state and memory, or a clear error on a node without the content secret. */
  get data (): { state: SharedState, memory: SharedMemory } {
    if (this.shared == null) throw new Error(`this node has no content key for mesh "${this.mesh.name}" and holds no shared state`)
    return this.shared
  }

  /** The messaging layer, or a clear error on a node that holds no content secret. */
  get mail (): Messaging {
    if (this.messaging == null) throw new Error(`this node has no content key for mesh "${this.mesh.name}" (a relay invite?) and cannot message`)
    return this.messaging
  }

  /** A small persistent setting of this session (message mode…), JSON in the store. */
  async getSetting<T> (key: string): Promise<T | undefined> {
    const v = await sublevel(this.store, 'settings').get(key)
    return v == null ? undefined : JSON.parse(Buffer.from(v).toString('utf8')) as T
  }

  async setSetting (key: string, value: unknown): Promise<void> {
    const value_ = new TextEncoder().encode(JSON.stringify(value))
    await this.store.batch([{ type: 'put', sublevel: sublevel(this.store, 'settings'), key, value: value_ }], { sync: true })
  }

  /** The path of this node's control socket. */
  registryControlPath (): string {
    if (this.control == null) throw new Error('this node serves no control socket')
    return this.control.path
  }

  /** Add a method to this node's control socket (the MCP layer adds its hook methods). */
  registerControl<S extends z.ZodType> (name: string, schema: S, handler: (params: z.output<S>, signal: AbortSignal) => Promise<unknown>): void {
    if (this.control == null) throw new Error('this node serves no control socket')
    this.control.register(name, schema, handler)
  }

  /** Join a group (or change the role in it): presence and subscription at once. */
  async joinGroup (name: string, role?: string): Promise<Group[]> {
    const groups = [...this.self().groups.filter(g => g.name !== name), role != null && role !== '' ? { name, role } : { name }]
    await this.setPresence({ groups })
    return groups
  }

  async leaveGroup (name: string): Promise<Group[]> {
    const groups = this.self().groups.filter(g => g.name !== name)
    await this.setPresence({ groups })
    return groups
  }

  multiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  self (): PeerInfo { return this.presence.self() }

  peers (opts: { group?: string } = {}): PeerInfo[] {
    const all = this.presence.list()
    if (opts.group == null) return all
    const g = opts.group.replace(/^@/, '')
    return all.filter(p => p.groups.some(x => x.name === g))
  }

  /** Change what this session shows the mesh; a new group list also changes subscriptions. */
  async setPresence (patch: Partial<PresenceBody>): Promise<PeerInfo> {
    const before = this.self().groups.map(g => g.name)
    const info = await this.presence.update(patch)
    if (patch.groups != null && this.messaging != null) {
      const after = patch.groups.map(g => g.name)
      for (const g of after.filter(g => !before.includes(g))) this.messaging.groups.join(g)
      for (const g of before.filter(g => !after.includes(g))) this.messaging.groups.leave(g)
    }
    return info
  }

  info (): MeshInfo {
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
      incarnation: this.presence.incarnation,
      pid: process.pid
    }
  }

  private initialBody (): PresenceBody {
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

  /**
   * Single presence on one machine: an older node of this session sharing our home is told,
   * with a record signed by the session key, that it has been replaced; it stops and frees
   * the store. Nodes elsewhere learn it from our presence (SPEC.md §6.4).
   */
  private async replaceOlderIncarnations (incarnation: number): Promise<void> {
    const olders = (await listRunning(this.init.home, this.mesh.name)).filter(e => e.peerId === this.key.peerId.toString())
    for (const e of olders) {
      const record = await signRecord(this.mesh.id, this.key.privateKey, {
        v: 1, peer: this.key.privateKey.publicKey.raw, inc: incarnation, seq: 0, at: Date.now(), addrs: [], gone: false, body: new Uint8Array(0)
      })
      try {
        const client = await ControlClient.connect(e.control, { timeoutMs: 2_000 })
        await client.call('replace', { record: Buffer.from(record).toString('base64') }).finally(() => { client.close() })
      } catch (err) {
        log('could not tell the older node (pid %d) it was replaced: %s', e.pid, (err as Error).message)
      }
    }
  }

  private async shutdown (reason: 'stopped' | 'replaced'): Promise<void> {
    if (this.state !== 'running') return
    this.state = 'stopping'
    this.dialer?.stop()
    await this.messaging?.dm.stop()
    await this.messaging?.groups.stop()
    await this.shared?.sync.stop()
    await this.shared?.replica.snapshot().catch(() => {})
    await this.presence?.stop({ goodbye: reason === 'stopped' })
    await this.control?.stop()
    if (this.init.registry !== false && this.presence != null) await unregister(this.init.home, this.mesh.name, this.peerId, this.presence.incarnation)
    await this.libp2p?.stop()
    await this.store?.close()
    this.state = 'stopped'
    this.safeDispatchEvent('node:stopped', { detail: { reason } })
  }
}

export async function createMeshNode (init: MeshNodeInit): Promise<MeshNode> {
  return new MeshNode(init)
}
