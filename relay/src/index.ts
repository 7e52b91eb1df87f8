/**
 * @packageDocumentation
 *
 * The claudemesh relay (SPEC.md §12): one libp2p node per mesh on a reachable host, holding
 * the mesh's network secret and nothing more. It is
 *  - a circuit relay v2 server, so members behind NAT get a `/p2p-circuit` address;
 *  - a kad-dht server and bootstrap peer, so members find each other through it;
 *  - a mailbox for sealed DMs to members that are away (`./mailbox.ts`);
 *  - the mesh's presence registry: it verifies every record's signature (it cannot open
 *    their bodies) and enforces one live presence per session key.
 *
 * @example
 * ```ts
 * import '@claudemesh/node/polyfill'
 * import { createRelay } from '@claudemesh/relay'
 * const relay = await createRelay({ data: '/var/lib/claudemesh-relay', invite: token, listen: ['/ip4/0.0.0.0/tcp/4001'] })
 * await relay.start()
 * console.error(relay.multiaddrs())
 * ```
 */
import { join } from 'node:path'
import type { Server } from 'node:http'
import {
  type Layout,
  type Mesh,
  type MeshLibp2p,
  createTransport,
  Dialer,
  encodeSummary,
  ensureDir,
  GroupCommit,
  openStore,
  Presence,
  readFileOrUndefined,
  type Store,
  sublevel,
  writeFileAtomic
} from '@claudemesh/node'
import {
  decodePrivateKey,
  type Ed25519PrivateKey,
  encodePrivateKey,
  meshFromFile,
  MeshFileSchema,
  meshToFile,
  newEd25519Key,
  verifyInvite
} from '@claudemesh/node/identity'
import { serveHealth } from './health.js'
import { createLog, type Log } from './log.js'
import { MailboxServer, type MailboxLimits } from './mailbox.js'

/**
 * The relay's store layout (mailbox and presence registry, SPEC.md §12). Relays shared the
 * session layout's numbering up to 2, so stores they wrote say 2; neither step touched them.
 */
const RELAY_LAYOUT: Layout = { version: 2, migrations: { 0: async () => {}, 1: async () => {} } }

export { createLog, type Level, type Log } from './log.js'
export { DEFAULT_LIMITS, type MailboxLimits, MailboxServer } from './mailbox.js'

export interface RelayInit {
  /** the relay's directory: its key, the mesh it serves, its LevelDB */
  data: string
  /** a relay invite (`claudemesh mesh invite --relay`); needed once, then kept in `data` */
  invite?: string
  /** a mesh loaded from a home (its content secret is dropped, never used) */
  mesh?: Mesh
  /** default `/ip4/0.0.0.0/tcp/4001` */
  listen?: string[]
  /** addresses to announce instead of the listening ones (behind a cloud NAT) */
  announce?: string[]
  /** HOST:PORT (or PORT, on 127.0.0.1) for `GET /health` */
  health?: string
  limits?: Partial<MailboxLimits>
  /** most circuit relay reservations held at once (default 1024) */
  maxReservations?: number
  log?: Log
}

export class Relay {
  mesh!: Mesh
  libp2p!: MeshLibp2p
  presence!: Presence
  mailbox!: MailboxServer
  healthUrl?: string
  private store?: Store
  private commit?: GroupCommit
  private dialer?: Dialer
  private health?: Server
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private startedAt = 0
  readonly log: Log

  constructor(readonly init: RelayInit) {
    this.log = init.log ?? createLog()
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('a relay starts once')
    this.state = 'running'
    try {
      await this.startParts()
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  private async startParts(): Promise<void> {
    const { data } = this.init
    await ensureDir(data)
    this.mesh = await resolveMesh(data, this.init, this.log)
    const privateKey = await relayKey(data)
    this.store = await openStore(join(data, 'db'), RELAY_LAYOUT)
    this.commit = new GroupCommit(this.store)
    this.libp2p = await createTransport({
      privateKey,
      meshId: this.mesh.id,
      networkSecret: this.mesh.networkSecret,
      listen: this.init.listen ?? ['/ip4/0.0.0.0/tcp/4001'],
      announce: this.init.announce,
      relayServer: { maxReservations: this.init.maxReservations ?? 1024 },
      maxConnections: 4096,
      // the relay is every member's neighbour: it forwards presence to up to 128 of them at
      // once instead of gossipsub's usual 6–12, so members behind it see each other promptly
      gossipDegree: 64
    })
    await this.libp2p.start()
    this.presence = new Presence(
      { libp2p: this.libp2p, store: sublevel(this.store, 'presence') },
      {
        meshId: this.mesh.id,
        privateKey,
        body: { name: 'relay', role: '', groups: [], status: 'idle', summary: '', cwd: '', host: '' },
        incarnation: Date.now(),
        announce: false,
        registry: true
      }
    )
    // a relay holds no group history and no replica: members need not ask it for either (SPEC.md §6.2)
    const holdsNothing = encodeSummary({ vv: {}, groups: {} })
    this.presence.summarize = async () => holdsNothing
    this.presence.addEventListener('peer:join', e => {
      this.log.info('member online', { peer: e.detail.id, incarnation: e.detail.incarnation })
    })
    this.presence.addEventListener('peer:leave', e => {
      this.log.info('member offline', { peer: e.detail.id })
    })
    this.presence.addEventListener('presence:reject', e => {
      this.log.debug('presence record refused', { reason: e.detail.reason })
    })
    await this.presence.start()
    this.mailbox = new MailboxServer(this.libp2p, sublevel(this.store, 'mailbox'), this.commit, this.mesh.id, this.log, this.init.limits)
    await this.mailbox.start()
    this.libp2p.services.relay?.addEventListener('relay:reservation', e => {
      this.log.debug('reservation', { addr: e.detail.addr.toString() })
    })
    // other relays and bootstrap peers of the mesh: the DHT and the registry span them all
    const others = [...this.mesh.bootstrap, ...this.mesh.relays].filter(a => !a.includes(this.peerId))
    if (others.length > 0) {
      this.dialer = new Dialer(this.libp2p, { home: data, mesh: this.mesh.name, bootstrap: others, registry: false })
      await this.dialer.start()
    }
    if (this.init.health != null) {
      const h = await serveHealth(this.init.health, () => this.report())
      this.health = h.server
      this.healthUrl = h.url
    }
    this.startedAt = Date.now()
    this.log.info('relay ready', {
      peerId: this.peerId,
      mesh: this.mesh.name,
      meshId: this.mesh.id,
      addrs: this.multiaddrs(),
      health: this.healthUrl,
      held: this.mailbox.size.messages
    })
  }

  /** Dialable addresses, each ending in /p2p/<relay id>. */
  multiaddrs(): string[] {
    return this.libp2p
      .getMultiaddrs()
      .map(a => a.toString())
      .map(a => (a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`))
  }

  /** What `GET /health` answers. */
  report(): { ok: boolean } & Record<string, unknown> {
    const peers = this.presence.list()
    return {
      ok: this.state === 'running',
      status: this.state,
      peerId: this.peerId,
      mesh: this.mesh.name,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      connections: this.libp2p.getConnections().length,
      reservations: this.libp2p.services.relay?.reservations.size ?? 0,
      members: { online: peers.filter(p => p.online).length, known: peers.length },
      mailbox: { ...this.mailbox.size, ...this.mailbox.stats },
      syncedWrites: this.commit?.stats.writes ?? 0,
      rssBytes: process.memoryUsage().rss
    }
  }

  /** Graceful: no new streams, every deposit in flight durable, the store closed. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return
    this.state = 'stopping'
    this.health?.close()
    this.dialer?.stop()
    await this.mailbox?.stop()
    await this.presence?.stop({ goodbye: false })
    await this.libp2p?.stop()
    await this.store?.close()
    this.state = 'stopped'
    this.log.info('relay stopped', { held: this.mailbox?.size.messages })
  }
}

export async function createRelay(init: RelayInit): Promise<Relay> {
  return new Relay(init)
}

/**
 * The mesh this relay serves: from the invite or the home's mesh the first time, kept in
 * `<data>/mesh.json` for every later start (an invite expires; the relay must not).
 */
async function resolveMesh(data: string, init: RelayInit, log: Log): Promise<Mesh> {
  const file = join(data, 'mesh.json')
  const text = await readFileOrUndefined(file)
  const kept = text != null ? meshFromFile(MeshFileSchema.parse(JSON.parse(text)), file) : undefined
  let given: Mesh | undefined
  if (init.invite != null) {
    const p = await verifyInvite(init.invite)
    if (p.content != null)
      log.warn("this invite carries the mesh's content key; the relay drops it (`claudemesh mesh invite --relay` makes one without)")
    given = {
      id: p.id,
      name: p.name,
      owner: p.owner,
      networkSecret: p.net,
      bootstrap: p.bootstrap,
      relays: p.relays,
      createdAt: p.iat * 1000
    }
  } else if (init.mesh != null) {
    const { contentSecret: _c, ownerKey: _o, ...rest } = init.mesh
    given = rest
  }
  if (given == null && kept == null)
    throw new Error(
      `no mesh to serve: pass --invite <token> (from \`claudemesh mesh invite --relay\`) or --mesh <name>; ${data} has none yet`
    )
  if (given != null && kept != null && given.id !== kept.id)
    throw new Error(`${data} already serves mesh "${kept.name}" (${kept.id}); use another --data directory for mesh "${given.name}"`)
  const mesh = given ?? (kept as Mesh)
  if (given != null) await writeFileAtomic(file, `${JSON.stringify(meshToFile(mesh), null, 2)}\n`)
  return mesh
}

/** The relay's identity: a key kept 0600 in its directory, so its /p2p/ id never changes. */
async function relayKey(data: string): Promise<Ed25519PrivateKey> {
  const file = join(data, 'relay.key')
  const text = await readFileOrUndefined(file)
  if (text != null) return decodePrivateKey(text.trim(), file)
  const key = await newEd25519Key()
  await writeFileAtomic(file, `${encodePrivateKey(key)}\n`)
  return key
}
