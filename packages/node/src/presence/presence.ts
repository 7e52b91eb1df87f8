/**
 * The presence service (SPEC.md §6): publishes this session's signed record on the mesh's
 * presence topic (on change and every heartbeat), pushes every known live record to each
 * newly connected peer over `/claudemesh/<mesh>/presence/1.0.0` (and what changed since to a
 * peer its topic mesh grafts), forwards records that came that way to the topic, keeps the peer table and
 * emits join/update/leave. It also enforces single presence: a record for our own key with
 * a newer incarnation means we were replaced; a peer seen under a newer incarnation gets its
 * old connections told so and closed.
 */
import { createHash } from 'node:crypto'
import type { Connection } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { type Ed25519PrivateKey, peerIdStringOfRaw } from '../identity/keys.js'
import type { Sublevel } from '../store/index.js'
import type { MeshLibp2p } from '../transport/index.js'
import * as c from './constants.js'
import { receiveRecords, sendRecords } from './exchange.js'
import { PresenceSaver } from './save.js'
import {
  checkSignature,
  decodeRecord,
  openBody,
  type PresenceBody,
  PresenceBodySchema,
  sealBody,
  signRecord,
  verifyRecord
} from './record.js'
import { applyRecord, expired, newer, type PeerEntry, type PeerInfo, peerInfo } from './table.js'

const log = logger('claudemesh:presence')

export interface PresenceEvents {
  'peer:join': CustomEvent<PeerInfo>
  'peer:update': CustomEvent<PeerInfo>
  'peer:leave': CustomEvent<PeerInfo>
  'self:replaced': CustomEvent<{ incarnation: number }>
  'presence:reject': CustomEvent<{ reason: string }>
  /**
   * A connection's exchange on connect arrived (its first frame, or its end): the sync summary
   * its first frame carried, or none (the peer sent none, or no frame at all).
   */
  'exchange:summary': CustomEvent<{ conn: Connection; summary?: Uint8Array }>
}

export interface PresenceInit {
  meshId: string
  privateKey: Ed25519PrivateKey
  /** absent on a relay, which can verify and route records but not read their bodies */
  presenceKey?: Uint8Array
  body: PresenceBody
  incarnation: number
  timings?: Partial<c.PresenceTimings>
  /** publish our own record (default true); a relay keeps the registry without being in it */
  announce?: boolean
  /**
   * A relay's registry (SPEC.md §12.2): when a session key shows up under a newer incarnation,
   * close every connection of that key, not only the older ones, and gossip the newer record.
   * Protocol state kept per PeerId (gossipsub streams) does not survive the older connection's
   * close; the newer node redials its relay at once and starts clean.
   */
  registry?: boolean
  /**
   * Resolves once the node holds the addresses it will announce (a member with relays: its
   * reservation, bounded). Our first record is signed then, not before: signed at start, it
   * would go out without the relay address and be replaced by another a moment later, a
   * second signature for every peer to check (SPEC.md §12.2). `start` does not wait for it.
   */
  addressed?: Promise<void>
}

export interface PresenceComponents {
  libp2p: MeshLibp2p
  store: Sublevel
}

export class Presence extends TypedEventEmitter<PresenceEvents> {
  readonly selfId: string
  readonly incarnation: number
  readonly timings: c.PresenceTimings
  readonly stats = { accepted: 0, rejected: 0, stale: 0, signed: 0 }
  private readonly peers = new Map<string, PeerEntry>()
  /** incarnation each live connection announced for its remote peer */
  private readonly connInc = new Map<string, number>()
  private body: PresenceBody
  private seq = 0
  private ownBytes?: Uint8Array
  /** the last of our records handed to gossipsub */
  private gossiped?: Uint8Array
  /** our first record being signed, once `init.addressed` resolves (`own`) */
  private firstRecord?: Promise<Uint8Array>
  private heartbeat?: ReturnType<typeof setTimeout>
  /** when our last record was signed: the heartbeat counts from it */
  private signedAt = 0
  private sweeper?: ReturnType<typeof setInterval>
  private running = false
  /** the goodbye is under way: nothing may sign a record that outdates it */
  private leaving = false
  private republish?: ReturnType<typeof setTimeout>
  /** accepted records go to the store written behind, in batches (SPEC.md §6.3) */
  private readonly saver: PresenceSaver
  /** peer of each record accepted in this run, by the record's digest (see `heldCopy`) */
  private readonly byDigest = new Map<string, string>()
  /** our last publish reached at least one peer (else it died for want of a topic mesh) */
  private heard = false
  /** our current record was signed while the topic had no subscriber, and kept back (`gossipOwn`) */
  private unpublished = false
  /** a pending republish must sign a new record (our addresses changed) */
  private resign = false
  /** bumped by every record the table takes (and each own record we sign): what changed since an exchange */
  private version = 0
  /** the version our own current record was signed at */
  private ownVersion = 0
  /** the table version each open connection's last exchange was sent at (§6.2, catch-up on graft) */
  private readonly pushedAt = new Map<string, number>()
  /** connections whose exchange on connect has come in (or begun to) */
  private readonly greeted = new Set<string>()
  /**
   * The sync summary our exchange on connect carries first (SPEC.md §6.2), opaque to presence;
   * none, and the peer syncs as if it knew nothing of us.
   */
  summarize?: () => Promise<Uint8Array | undefined>
  private readonly topic: string
  private readonly protocol: string

  constructor(
    private readonly components: PresenceComponents,
    private readonly init: PresenceInit
  ) {
    super()
    this.selfId = components.libp2p.peerId.toString()
    this.incarnation = init.incarnation
    this.body = init.body
    this.timings = { ...c.DEFAULT_TIMINGS, ...init.timings }
    this.topic = c.presenceTopic(init.meshId)
    this.protocol = c.presenceProtocol(init.meshId)
    this.saver = new PresenceSaver(components.store)
  }

  async start(): Promise<void> {
    await this.load()
    const { libp2p } = this.components
    this.running = true
    await libp2p.handle(
      this.protocol,
      (stream, conn) => {
        const first = !this.greeted.has(conn.id)
        this.greeted.add(conn.id)
        void receiveRecords(stream, {
          onRecord: async bytes => this.ingest(bytes, conn, true),
          onError: msg => {
            this.reject(msg)
          },
          onSummary: first
            ? summary => {
                this.safeDispatchEvent('exchange:summary', { detail: { conn, summary } })
              }
            : undefined
        })
      },
      { runOnLimitedConnection: true, maxInboundStreams: 8 }
    )
    libp2p.services.pubsub.topicValidators.set(this.topic, async (_peer, msg) => this.validate(msg.data))
    libp2p.services.pubsub.subscribe(this.topic)
    libp2p.services.pubsub.addEventListener('subscription-change', this.onSubscription)
    libp2p.services.pubsub.addEventListener('gossipsub:graft', this.onGraft)
    libp2p.addEventListener('connection:open', this.onConnectionOpen)
    libp2p.addEventListener('connection:close', this.onConnectionClose)
    // a new address (a relay reservation's /p2p-circuit one) is worth announcing at once
    libp2p.addEventListener('self:peer:update', this.onSelfUpdate)
    const first = this.publish()
    if (this.init.addressed == null) await first
    // a first record still waiting for its addresses: the heartbeat counts from now
    if (this.ownBytes == null) this.signedAt = Date.now()
    this.scheduleHeartbeat()
    this.sweeper = setInterval(
      () => {
        this.sweep()
      },
      Math.max(250, Math.min(this.timings.graceMs, this.timings.ttlMs) / 4)
    )
    this.sweeper.unref()
    for (const conn of libp2p.getConnections()) void this.sendExchange(conn)
  }

  /** Say goodbye (a signed `gone` record), then stop everything. */
  async stop(opts: { goodbye?: boolean } = {}): Promise<void> {
    if (!this.running || this.leaving) return
    // first stop everything that signs: a heartbeat, a debounced republish or a change signed
    // after the goodbye has a higher sequence number and would bring us back online (§6.3)
    this.leaving = true
    clearTimeout(this.heartbeat)
    clearTimeout(this.republish)
    this.republish = undefined
    if (opts.goodbye !== false) {
      await this.publish({ gone: true }).catch(() => {})
      await this.goodbyeDirect()
    }
    this.running = false
    clearInterval(this.sweeper)
    const { libp2p } = this.components
    libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    libp2p.removeEventListener('connection:close', this.onConnectionClose)
    libp2p.removeEventListener('self:peer:update', this.onSelfUpdate)
    libp2p.services.pubsub.removeEventListener('subscription-change', this.onSubscription)
    libp2p.services.pubsub.removeEventListener('gossipsub:graft', this.onGraft)
    libp2p.services.pubsub.topicValidators.delete(this.topic)
    libp2p.services.pubsub.unsubscribe(this.topic)
    await libp2p.unhandle(this.protocol)
    await this.saver.save()
  }

  /**
   * The goodbye also goes straight to every connected member over the exchange protocol
   * (bounded, 1 s): gossip drops it when our topic mesh has not formed yet (a node that stops
   * right after it joined), and the peer would count us online until the TTL.
   */
  private async goodbyeDirect(): Promise<void> {
    const own = this.ownBytes
    if (own == null || this.init.announce === false) return
    const conns = this.components.libp2p
      .getConnections()
      .filter(c => c.status === 'open' && this.peers.get(c.remotePeer.toString())?.state !== undefined)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.allSettled(conns.map(async conn => sendRecords(conn, this.protocol, [own]))),
      new Promise(resolve => {
        timer = setTimeout(resolve, 1_000)
      })
    ])
    clearTimeout(timer)
  }

  self(): PeerInfo {
    const b = this.body
    return { id: this.selfId, ...b, online: true, lastSeen: Date.now(), incarnation: this.incarnation, addrs: this.addrs(), self: true }
  }

  /** Every peer ever heard of (not us), online first. */
  list(): PeerInfo[] {
    return [...this.peers.values()].map(e => peerInfo(e)).sort((a, b) => Number(b.online) - Number(a.online) || byName(a.name, b.name))
  }

  get(id: string): PeerInfo | undefined {
    const e = this.peers.get(id)
    return e != null ? peerInfo(e) : undefined
  }

  /** A peer's display name, '' when unknown: what each received message is labelled with (no PeerInfo built). */
  nameOf(id: string): string {
    return this.peers.get(id)?.body?.name ?? ''
  }

  /** Change our presence (name, status, summary, groups…) and announce it at once. */
  async update(patch: Partial<PresenceBody>): Promise<PeerInfo> {
    this.body = PresenceBodySchema.parse({ ...this.body, ...patch })
    await this.publish()
    return this.self()
  }

  /** Our current signed record, for the control socket's `replace` and the relay. */
  ownRecord(): Uint8Array | undefined {
    return this.ownBytes
  }

  /** A record that reached us outside the network (control socket): same checks as any. */
  async accept(bytes: Uint8Array, conn?: Connection): Promise<boolean> {
    return this.ingest(bytes, conn)
  }

  private addrs(): string[] {
    return this.components.libp2p
      .getMultiaddrs()
      .map(a => a.toString())
      .filter(a => a.length <= c.LIMITS.addr)
      .slice(0, c.LIMITS.addrs)
  }

  /** Sign a new version of our record (next sequence number). */
  private async signOwn(gone = false): Promise<Uint8Array> {
    const peer = this.components.libp2p.peerId.publicKey?.raw ?? new Uint8Array(32)
    const body = this.init.presenceKey != null ? sealBody(this.init.presenceKey, peer, this.body) : new Uint8Array(0)
    const seq = ++this.seq
    this.signedAt = Date.now()
    this.stats.signed++
    const bytes = await signRecord(this.init.meshId, this.init.privateKey, {
      v: 1,
      peer,
      inc: this.incarnation,
      seq,
      at: Date.now(),
      addrs: this.addrs(),
      gone,
      body
    })
    // signatures run concurrently: an older one finishing last must not replace a newer one
    if (seq === this.seq) {
      this.ownBytes = bytes
      this.ownVersion = ++this.version
    }
    return bytes
  }

  private async publish(opts: { gone?: boolean } = {}): Promise<void> {
    if (!this.running || this.init.announce === false || (this.leaving && opts.gone !== true)) return
    if (opts.gone !== true && this.ownBytes == null) {
      // the first record: signed once (`own`), whoever asks for it first
      const bytes = await this.own().catch(() => undefined)
      if (bytes != null) await this.gossipOwn(bytes)
      return
    }
    await this.gossipOwn(await this.signOwn(opts.gone === true))
  }

  /**
   * Our current record; the first is signed once the node holds the addresses it announces
   * (`init.addressed`), and never after the goodbye began (it would outdate the goodbye).
   */
  private async own(): Promise<Uint8Array> {
    if (this.ownBytes != null) return this.ownBytes
    this.firstRecord ??= (async () => {
      await this.init.addressed
      if (this.leaving || !this.running) throw new Error('presence stopped before its first record')
      return this.signOwn()
    })()
    return this.firstRecord
  }

  /**
   * Hand our record to gossipsub, unless no peer is subscribed to the topic yet (a node that
   * just started): gossipsub would mark it seen and never send those bytes again, so the next
   * subscriber would need a newly signed record, which every member then checks once more.
   * Kept back, the same bytes go out when a peer subscribes (`republishSoon`).
   */
  private async gossipOwn(bytes: Uint8Array): Promise<void> {
    const pubsub = this.components.libp2p.services.pubsub
    // the first record, asked for by several (the start, a republish, the heartbeat), goes once:
    // gossipsub refuses the same bytes again as a duplicate
    if (bytes === this.gossiped) return
    if (pubsub.getSubscribers(this.topic).length === 0) {
      this.heard = false
      this.unpublished = bytes === this.ownBytes
      return
    }
    if (bytes === this.ownBytes) this.unpublished = false
    this.gossiped = bytes
    try {
      const r = await pubsub.publish(this.topic, bytes)
      this.heard = r.recipients.length > 0
    } catch (err) {
      this.heard = false
      log('publish failed: %s', (err as Error).message)
    }
  }

  private async validate(data: Uint8Array): Promise<TopicValidatorResult> {
    const ok = await this.ingest(data)
    if (ok) return TopicValidatorResult.Accept
    // the same bytes came by an exchange stream while this copy was being validated, and
    // their forward found gossipsub holding this copy (`forward`): this copy goes on instead
    if (this.unforwarded.size > 0 && this.unforwarded.delete(digest(data))) return TopicValidatorResult.Accept
    return TopicValidatorResult.Ignore
  }

  /** digests of records taken from an exchange stream whose forward gossipsub refused (or may yet refuse) as already seen */
  private readonly unforwarded = new Set<string>()

  /**
   * The one choke-point every record passes, whatever path it came by. `forward`: a record the
   * table takes goes on to the topic (one that came by an exchange stream, not by gossip).
   */
  private async ingest(bytes: Uint8Array, conn?: Connection, forward = false): Promise<boolean> {
    const sum = digest(bytes)
    if (this.heldCopy(sum, conn)) return false
    let record
    let id: string
    try {
      record = decodeRecord(bytes)
      id = peerIdStringOfRaw(record.peer)
      // a connection's own record names the incarnation speaking on it, even when we already
      // hold that record (it may have come by gossip first): single presence needs to know
      if (conn != null && conn.remotePeer.toString() === id && record.inc >= (this.connInc.get(conn.id) ?? 0))
        this.connInc.set(conn.id, record.inc)
      // most records are copies we already hold: compare versions before paying for a signature check
      const known = this.peers.get(id)
      if (
        known != null &&
        !newer(record, known.record) &&
        !(known.restored === true && record.inc === known.record.inc && record.seq === known.record.seq)
      ) {
        this.stats.stale++
        return false
      }
      await checkSignature(this.init.meshId, record)
      if (record.at > Date.now() + this.timings.maxClockSkewMs) throw new Error('presence record is dated in the future')
    } catch (err) {
      this.reject((err as Error).message)
      return false
    }
    if (id === this.selfId) return this.ingestOwn(record.inc)
    let body: PresenceBody | undefined
    if (this.init.presenceKey != null && !record.gone) {
      try {
        body = openBody(this.init.presenceKey, record.peer, record.body)
      } catch (err) {
        this.reject((err as Error).message)
        return false
      }
    }
    const existing = this.peers.get(id)
    const entry: PeerEntry = {
      id,
      record,
      bytes,
      digest: sum,
      body: body ?? existing?.body,
      lastSeen: Date.now(),
      state: 'offline'
    }
    const verdict = applyRecord(existing, entry, Date.now(), this.current())
    if (verdict === 'stale') {
      this.stats.stale++
      return false
    }
    this.stats.accepted++
    // news of a peer we never knew that does not bring it online (a goodbye, an old record)
    // is not worth a table slot: otherwise anyone could fill our memory and disk with them
    if (existing == null && verdict === 'quiet') return true
    entry.version = ++this.version
    this.peers.set(id, entry)
    if (existing?.digest != null) this.byDigest.delete(existing.digest)
    this.byDigest.set(sum, id)
    this.evictIfFull()
    this.saver.put(id, bytes)
    if (existing != null && record.inc > existing.record.inc) this.evictOlderIncarnations(id, record.inc, bytes)
    if (verdict === 'join' || verdict === 'update' || verdict === 'leave') {
      this.safeDispatchEvent(`peer:${verdict}`, { detail: peerInfo(entry) })
    }
    if (forward) this.forward(bytes, sum)
    return true
  }

  /**
   * A record that came by an exchange stream is news gossip may never have carried to the
   * rest of the mesh (it was published before its author's topic mesh formed, or it reached
   * only the author's neighbours): forward its bytes on the topic, as gossipsub forwards (to
   * the mesh, at least D peers, not flooded). The message id is the bytes' hash, so members
   * that already hold it drop the copy before validation, and this node cannot send it twice
   * (SPEC.md §6.2). When gossipsub has seen these bytes already, a copy of them came by gossip
   * and is still being validated (had it been taken, this one would be stale, and had it
   * failed, so would this): gossipsub refuses to publish them, and that copy, stale by the time
   * its check ends, would be ignored, so neither would go on. The copy is accepted instead
   * (`validate`), and gossipsub forwards it. (A 100-node home: a subtree never heard of one
   * node until its next heartbeat, 50 s later.)
   */
  private forward(bytes: Uint8Array, sum: string): void {
    if (!this.running || this.leaving) return
    // the options exist on gossipsub's class, not on the interface it exports
    const pubsub = this.components.libp2p.services.pubsub as unknown as { publish: PublishWithOpts }
    // marked before the publish, whose refusal comes a few ticks later: the copy's check may end first
    if (this.unforwarded.size >= c.MAX_KNOWN_PEERS) this.unforwarded.clear()
    this.unforwarded.add(sum)
    pubsub.publish(this.topic, bytes, { floodPublish: false, ignoreDuplicatePublishError: false }).then(
      () => {
        this.unforwarded.delete(sum)
      },
      (err: Error) => {
        if (err.message === 'PublishError.Duplicate') return
        this.unforwarded.delete(sum)
        log('forwarding a record failed: %s', err.message)
      }
    )
  }

  private ingestOwn(inc: number): boolean {
    if (inc > this.incarnation && this.running) {
      log('replaced by a newer incarnation %d of this session (ours %d)', inc, this.incarnation)
      this.safeDispatchEvent('self:replaced', { detail: { incarnation: inc } })
      return true
    }
    return false
  }

  /**
   * Is the record with digest `sum` exactly the one we hold for some peer (accepted in this run)? Then it is a
   * copy (most records an exchange hands over are), stale by definition: it is dropped before
   * decoding, schema and signature, which cost ~50× the digest (SPEC.md §6.3, step 0).
   */
  private heldCopy(sum: string, conn?: Connection): boolean {
    const id = this.byDigest.get(sum)
    if (id == null) return false
    const known = this.peers.get(id)
    if (known == null) return false
    // the incarnation speaking on a connection is still learnt from its own record (§6.4)
    if (conn != null && conn.remotePeer.toString() === id && known.record.inc >= (this.connInc.get(conn.id) ?? 0))
      this.connInc.set(conn.id, known.record.inc)
    this.stats.stale++
    return true
  }

  /** Forget the longest-offline peer once the table is full. */
  private evictIfFull(): void {
    if (this.peers.size <= c.MAX_KNOWN_PEERS) return
    let victim: PeerEntry | undefined
    for (const e of this.peers.values()) {
      if (e.state === 'offline' && (victim == null || e.lastSeen < victim.lastSeen)) victim = e
    }
    if (victim == null) return
    this.peers.delete(victim.id)
    if (victim.digest != null) this.byDigest.delete(victim.digest)
    this.saver.del(victim.id)
  }

  /** Peers remembered from earlier runs, most recently seen first: worth redialling. */
  remembered(limit: number): PeerInfo[] {
    return [...this.peers.values()]
      .filter(e => e.restored === true)
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .slice(0, limit)
      .map(e => peerInfo(e))
  }

  private reject(reason: string): void {
    this.stats.rejected++
    log('rejected a presence record: %s', reason)
    this.safeDispatchEvent('presence:reject', { detail: { reason } })
  }

  /** Tell connections still carrying an older incarnation of `id` that it was replaced. */
  private evictOlderIncarnations(id: string, inc: number, bytes: Uint8Array): void {
    const conns = this.components.libp2p.getConnections().filter(c => c.remotePeer.toString() === id)
    const older = conns.filter(c => (this.connInc.get(c.id) ?? inc) < inc)
    if (older.length === 0) return
    const closing = older.map(async conn =>
      sendRecords(conn, this.protocol, [bytes]).finally(() => {
        void conn.close().catch(() => {})
      })
    )
    if (this.init.registry !== true) return
    void this.components.libp2p.services.pubsub.publish(this.topic, bytes).catch(() => {})
    void Promise.allSettled(closing).then(() => {
      for (const conn of conns) if (!older.includes(conn)) void conn.close().catch(() => {})
    })
  }

  /**
   * A peer joined the presence topic: gossip our record soon (debounced) if our last one
   * reached nobody. Once it reached a peer, a new connection gets it by the exchange on
   * connect: re-signing per connection made a DM burst to 25 fresh peers cost every node
   * thousands of signature checks (bench/load.mjs, SPEC.md §6.2).
   */
  private readonly onSubscription = (evt: CustomEvent<{ subscriptions: Array<{ topic: string; subscribe: boolean }> }>): void => {
    if (!this.heard && evt.detail.subscriptions.some(s => s.topic === this.topic && s.subscribe)) this.republishSoon()
  }

  /**
   * Our topic mesh gained a peer. Until a node's gossipsub mesh forms (its first heartbeats)
   * it forwards nothing, so records published at start die early; publishing again once the
   * mesh exists makes a new node known everywhere in a few hops, not at the next heartbeat.
   */
  private readonly onGraft = (evt: CustomEvent<{ topic: string; peerId?: string }>): void => {
    if (evt.detail.topic !== this.topic) return
    if (!this.heard) this.republishSoon()
    if (evt.detail.peerId != null) this.catchUp(evt.detail.peerId)
  }

  /**
   * A peer joined our topic mesh: send it, on an exchange stream, every record that changed
   * since the exchange on connect. Both were new then, with tables nearly empty; the graft
   * comes a heartbeat or more later, when the tables hold what the records gossiped before
   * either mesh formed. The peer forwards what is news to it (`forward`), through its mesh.
   */
  private catchUp(peer: string): void {
    if (!this.running || this.leaving) return
    let conns: Connection[]
    try {
      conns = this.components.libp2p.getConnections(peerIdFromString(peer))
    } catch {
      return
    }
    // no exchange on connect yet: that one is under way and sends everything
    const conn = conns.find(c => c.status === 'open' && this.pushedAt.has(c.id))
    if (conn != null) void this.sendExchange(conn)
  }

  /** A republish is waiting (debounced); for tests. */
  get republishPending(): boolean {
    return this.republish != null
  }

  /** Gossip our record 100 ms from now: the one kept back if there is one, else a newly signed one. */
  private republishSoon(resign = false): void {
    this.resign ||= resign
    if (this.republish != null || this.leaving) return
    this.republish = setTimeout(() => {
      this.republish = undefined
      const resign = this.resign
      this.resign = false
      // asked for because our record had reached nobody: since then it has
      if (!resign && this.heard) return
      const kept = !resign && this.unpublished ? this.ownBytes : undefined
      if (kept != null && this.running && !this.leaving) void this.gossipOwn(kept)
      else void this.publish()
    }, 100)
  }

  private readonly onSelfUpdate = (): void => {
    if (this.ownBytes == null) {
      // no record yet: the first takes the addresses of when it is signed; one being signed
      // now may have read older ones, so look again once it is done
      this.firstRecord?.then(
        () => {
          if (this.ownBytes != null) this.onSelfUpdate()
        },
        () => {}
      )
      return
    }
    const addrs = this.addrs()
    const known = decodeRecord(this.ownBytes).addrs
    if (addrs.length !== known.length || addrs.some((a, i) => a !== known[i])) this.republishSoon(true)
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    void this.sendExchange(evt.detail)
  }

  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    this.connInc.delete(conn.id)
    this.pushedAt.delete(conn.id)
    this.greeted.delete(conn.id)
    const id = conn.remotePeer.toString()
    const entry = this.peers.get(id)
    if (entry == null || entry.state !== 'online') return
    if (this.components.libp2p.getConnections(conn.remotePeer).length > 0) return
    entry.state = 'suspect'
    entry.lostAt = Date.now()
  }

  /** Peers counted online (suspect included). */
  get onlineCount(): number {
    let n = 0
    for (const e of this.peers.values()) if (e.state !== 'offline') n++
    return n
  }

  /** The timings in force now: stretched past HEARTBEAT_SCALE_FROM online peers (SPEC.md §6.3). */
  current(): c.PresenceTimings {
    return c.scaledTimings(this.timings, this.onlineCount)
  }

  /**
   * The next heartbeat comes one (scaled) heartbeat after our last signed record, whatever
   * signed it. When it fires and the mesh has grown since (a longer heartbeat now), it waits
   * out the rest instead of signing: a mesh of starting nodes, each knowing more peers every
   * second, does not pay for a round of N² checks that its new size no longer asks for.
   */
  private scheduleHeartbeat(): void {
    // a relay keeps the registry without a record of its own: nothing to republish
    if (!this.running || this.leaving || this.init.announce === false) return
    clearTimeout(this.heartbeat)
    const due = this.signedAt + this.current().heartbeatMs - Date.now()
    this.heartbeat = setTimeout(
      () => {
        this.heartbeat = undefined
        if (!this.running || this.leaving) return
        if (Date.now() - this.signedAt >= this.current().heartbeatMs) void this.publish()
        this.scheduleHeartbeat()
      },
      Math.max(0, due)
    )
    this.heartbeat.unref()
  }

  private sweep(): void {
    const now = Date.now()
    const t = this.current()
    for (const e of this.peers.values()) {
      if (!expired(e, now, t)) continue
      e.state = 'offline'
      delete e.lostAt
      this.safeDispatchEvent('peer:leave', { detail: peerInfo(e) })
    }
  }

  /**
   * On a new connection: our record first, then every live record we know. Again on a graft
   * (`catchUp`): only what changed since the connection's last exchange, if anything.
   */
  private async sendExchange(conn: Connection): Promise<void> {
    if (!this.running) return
    // the exchange on connect carries our summary first, and always goes: the peer's sync on
    // connect waits for it. It is made before the connection counts as exchanged (`pushedAt`),
    // so a catch-up on graft, which waits for that, cannot open its stream first (SPEC.md §6.2)
    const summary = this.pushedAt.has(conn.id) ? undefined : await this.summarize?.().catch(() => undefined)
    // our current record: a peer that remembers it from an earlier run of its own treats the
    // first copy as news (table.ts, restored records), so no new signature per connection
    const own = this.init.announce !== false ? await this.own().catch(() => undefined) : undefined
    const since = this.pushedAt.get(conn.id) ?? -1
    const records: Uint8Array[] = []
    if (own != null && (since < 0 || this.ownVersion > since)) records.push(own)
    const remote = conn.remotePeer.toString()
    for (const e of this.peers.values()) {
      if (e.state !== 'offline' && e.id !== remote && (e.version ?? 0) > since) records.push(e.bytes)
    }
    this.pushedAt.set(conn.id, this.version)
    if (records.length > 0 || summary != null) await sendRecords(conn, this.protocol, records, summary)
  }

  /** Peers remembered from earlier runs: offline until they speak again. */
  private async load(): Promise<void> {
    for await (const [id, bytes] of this.components.store.iterator({ limit: c.MAX_KNOWN_PEERS })) {
      try {
        const record = await verifyRecord(this.init.meshId, bytes)
        const body = this.init.presenceKey != null && !record.gone ? openBody(this.init.presenceKey, record.peer, record.body) : undefined
        this.peers.set(id, { id, record, bytes, body, lastSeen: record.at, state: 'offline', restored: true })
      } catch {
        await this.components.store.del(id)
      }
    }
  }
}

type PublishWithOpts = (
  topic: string,
  data: Uint8Array,
  opts: { floodPublish: boolean; ignoreDuplicatePublishError: boolean }
) => Promise<unknown>

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64')
}

/**
 * Names in a fixed order, case folded first, without localeCompare: its first call loads ICU's
 * collator, ~7 ms of CPU and ~3 MB of RSS in every node that lists two peers.
 */
export function byName(a: string, b: string): number {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  if (x !== y) return x < y ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}
