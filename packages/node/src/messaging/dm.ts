/**
 * Direct messages (SPEC.md §8): sealing, the durable outbox with one channel per recipient,
 * and the single receive choke-point every inbound envelope passes, whatever path it came
 * by, before it is written to the inbox and acknowledged.
 */
import { hostname } from 'node:os'
import type { Connection, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import { peerIdFromString } from '@libp2p/peer-id'
import { equals } from 'uint8arrays/equals'
import type { Dialer } from '../discovery/dialer.js'
import { type Ed25519PrivateKey, peerIdStringOfRaw, publicKeyOfPeer } from '../identity/keys.js'
import { MailboxClient } from './mailbox/client.js'
import { mailboxProtocol } from './mailbox/frames.js'
import type { Presence } from '../presence/presence.js'
import type { BatchOp } from '../store/commit.js'
import type { MeshLibp2p } from '../transport/index.js'
import { TurnFlusher } from '../serial.js'
import { Channel } from './channel.js'
import * as c from './constants.js'
import { PairKeys } from '../crypto/index.js'
import { type Content, type DmEnvelope, decodeDm, idBytes, idText, newMessageId, openDm, sealDm } from './envelope.js'
import { decodeDmFrame, encodeDmFrame } from './frames.js'
import { viaMailbox } from './route.js'
import { LocalDm } from './local.js'
import { type FrameStream, lpFrames } from './frame-stream.js'
import type { Inbox, InboxMessage } from './inbox.js'
import type { DeliveryStatus, Outbox, OutboxItem } from './outbox.js'
import type { FloodGuard, RefuseWhy } from './flood.js'

const log = logger('claudemesh:dm')
/** the most time a turn spends deriving pair keys ahead of the first DM (DirectMessages.warm) */
const WARM_SLICE_MS = 2
/** the most peers waiting for theirs; past it, a key is derived at the first DM as before */
const MAX_WARMING = 10_000

export type RejectReason = 'malformed' | 'oversized' | 'misaddressed' | 'forged' | 'tampered' | 'expired' | 'future'

export interface DmEvents {
  'message:receive': CustomEvent<InboxMessage>
  'message:status': CustomEvent<{ id: string; to: string; status: DeliveryStatus }>
  'message:reject': CustomEvent<{ reason: RejectReason; from?: string }>
}

/** What the choke-point decided: acknowledge `id`, or refuse it for now (flood control, §8.8). */
export type Received = { id: string; refuse?: { why: RefuseWhy; retryMs: number } }

export interface DmComponents {
  guard: FloodGuard
  libp2p: MeshLibp2p
  presence: Presence
  dialer: Dialer
  inbox: Inbox
  outbox: Outbox
}

export interface DmInit {
  meshId: string
  privateKey: Ed25519PrivateKey
  contentSecret: Uint8Array
  ttlMs?: number
  /** peer ids of the mesh's relays, in order of preference: their mailboxes hold DMs for unreachable peers */
  relays?: string[]
  /**
   * the shared home's `run/<mesh>`: peers of this home are reached over their DM socket
   * (SPEC.md §8.9); `listen` serves ours (not a courier: the session may run beside it)
   */
  local?: { runDir: string; listen: boolean }
}

export interface Accepted {
  id: string
  to: string
  name: string
  status: DeliveryStatus
}

export class DirectMessages extends TypedEventEmitter<DmEvents> {
  readonly stats = {
    sent: 0,
    received: 0,
    duplicates: 0,
    rejected: {} as Partial<Record<RejectReason, number>>,
    refused: {} as Partial<Record<RefuseWhy, number>>
  }
  /** per recipient: it refused our DMs for now (flood control); the channel waits until `until` */
  readonly deferred = new Map<string, { why: RefuseWhy; until: number }>()
  private stopped = false
  readonly keys: PairKeys
  private readonly selfPub: Uint8Array
  private readonly channels = new Map<string, Channel>()
  private readonly protocol: string
  private timer?: ReturnType<typeof setInterval>
  private readonly ttl: number
  /** present when the node uses relays (SPEC.md §12.4) */
  mailbox?: MailboxClient
  /** the same-home DM socket (SPEC.md §8.9) */
  readonly local?: LocalDm
  private started = false

  constructor(
    private readonly components: DmComponents,
    private readonly init: DmInit
  ) {
    super()
    this.selfPub = init.privateKey.publicKey.raw
    this.keys = new PairKeys(this.selfPub, init.privateKey.raw.subarray(0, 32), init.contentSecret, init.meshId)
    this.protocol = c.dmProtocol(init.meshId)
    this.ttl = init.ttlMs ?? c.DEFAULT_TTL_MS
    if (init.relays != null && init.relays.length > 0) this.mailbox = this.newMailbox(init.relays)
    if (init.local != null) {
      const serve = init.local.listen
        ? (frames: FrameStream, from: string) => {
            void this.serve(frames, from)
          }
        : undefined
      this.local = new LocalDm({
        runDir: init.local.runDir,
        self: components.libp2p.peerId.toString(),
        serve,
        blocked: peer => components.guard.blocked(peer)
      })
    }
  }

  private newMailbox(relays: string[]): MailboxClient {
    return new MailboxClient(this.components.libp2p, mailboxProtocol(this.init.meshId), relays, {
      accept: async (bytes, env) => this.acceptMail(bytes, env),
      held: async (items, relay) => {
        await this.settle(items, 'held', relay)
      },
      delivered: async ids => {
        for (const s of await this.components.outbox.delivered(ids))
          this.safeDispatchEvent('message:status', { detail: { id: s.id, to: s.to, status: 'delivered' } })
      },
      refused: async items => {
        await this.settle(items, 'failed')
      }
    })
  }

  /**
   * A relay learnt after start (a bootstrap peer that serves the mailbox, SPEC.md §12.1).
   * Channels that already failed to reach their peer hand their DMs to it now, as they would
   * have had the relay been known when they failed.
   */
  addRelay(relay: string): void {
    if (this.mailbox == null) {
      this.mailbox = this.newMailbox([relay])
      if (this.started) void this.mailbox.start()
    } else {
      this.mailbox.addRelay(relay)
    }
    for (const ch of [...this.channels.values()]) {
      if (ch.waiting && this.divert(ch)) ch.close()
    }
  }

  /** Retry every queued DM now, cutting backoffs short (a graceful stop is flushing, SPEC.md §8.7). */
  retryNow(): void {
    for (const ch of this.channels.values()) ch.kick()
    this.mailbox?.nudge()
  }

  /** Whether some queued DM could leave now: its recipient is connected or online, or a relay's mailbox is open. */
  movable(): boolean {
    if (this.mailbox?.ready === true) return true
    const { libp2p, presence, outbox } = this.components
    return outbox.peers().some(p => libp2p.getConnections(this.peerIdOf(p)).length > 0 || presence.get(p)?.online === true)
  }

  /** Whether a DM to this peer goes to a relay's mailbox now (the rule: route.ts). */
  private viaMailbox(peer: string): boolean {
    // every DM asks: without relays the answer needs no facts (no id parse, no lookups)
    if (this.mailbox == null) return false
    const { libp2p, presence, outbox } = this.components
    return viaMailbox({
      relays: true,
      queuedAtRelay: this.mailbox.has(peer) || outbox.heldFor(peer) > 0,
      directBusy: this.channels.get(peer)?.idle === false,
      connected: libp2p.getConnections(this.peerIdOf(peer)).length > 0,
      peer: presence.get(peer),
      host: this.host
    })
  }

  private readonly host = hostname().slice(0, 255)
  private readonly peerIds = new Map<string, PeerId>()

  /** Parsed once per peer: every DM's path asks whether its recipient is connected. */
  private peerIdOf(peer: string): PeerId {
    let id = this.peerIds.get(peer)
    if (id == null) {
      if (this.peerIds.size > 10_000) this.peerIds.clear()
      id = peerIdFromString(peer)
      this.peerIds.set(peer, id)
    }
    return id
  }

  /** A channel could not deliver: hand everything queued for its peer to the mailbox, in order. */
  private divert(ch: Channel): boolean {
    if (this.mailbox == null) return false
    const items = this.components.outbox.pending(ch.peer)
    if (items.length === 0) return false
    log('%s is unreachable: %d DMs go to the relay mailbox', ch.peer, items.length)
    if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
    this.mailbox.deposit(items)
    return true
  }

  /** A durable outbox item takes its peer's current path (decided now, after the write). */
  private route(item: OutboxItem): void {
    if (this.viaMailbox(item.to)) {
      this.mailbox?.deposit([item])
      return
    }
    const ch = this.channels.get(item.to)
    // a new channel loads every queued item of its peer itself, this one included
    if (ch != null) ch.push([item])
    else this.channel(item.to).kick()
  }

  /** A relay's answer for deposits: all of them settle at once (SPEC.md §12.4, the order rule). */
  private async settle(items: OutboxItem[], status: 'held' | 'failed', relay?: string): Promise<void> {
    for (const { id, to } of await this.components.outbox.settle(items, status, Date.now(), relay)) {
      this.safeDispatchEvent('message:status', { detail: { id, to, status } })
    }
  }

  async start(): Promise<void> {
    const { libp2p, presence, outbox } = this.components
    await libp2p.handle(
      this.protocol,
      (stream, conn) => {
        void this.serve(lpFrames(stream, c.MAX_DM_FRAME_BYTES), conn.remotePeer.toString())
      },
      { runOnLimitedConnection: true, maxInboundStreams: 64 }
    )
    libp2p.addEventListener('connection:open', this.onConnect)
    for (const t of ['peer:join', 'peer:update'] as const) presence.addEventListener(t, this.onPresence)
    for (const p of presence.list()) if (p.online) this.warm(p.id)
    await this.local?.start()
    this.components.guard.addEventListener('flood:block', this.onBlock)
    this.started = true
    await this.mailbox?.start()
    for (const peer of outbox.peers()) {
      if (this.viaMailbox(peer)) this.mailbox?.deposit(outbox.pending(peer))
      else this.channel(peer).kick()
    }
    this.timer = setInterval(() => {
      this.tick().catch(err => {
        log('dm upkeep failed: %s', (err as Error).message)
      })
    }, 2_000)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.started = false
    this.stopped = true
    clearInterval(this.timer)
    this.mailbox?.stop()
    const { libp2p, presence } = this.components
    libp2p.removeEventListener('connection:open', this.onConnect)
    for (const t of ['peer:join', 'peer:update'] as const) presence.removeEventListener(t, this.onPresence)
    this.warming.length = 0
    for (const ch of this.channels.values()) ch.close()
    this.channels.clear()
    this.components.guard.removeEventListener('flood:block', this.onBlock)
    await this.local?.stop()
    await libp2p.unhandle(this.protocol)
  }

  /**
   * Seal one DM per recipient and make it durable; resolves once every one is accepted.
   * `idFor` fixes each recipient's message id and `ops` join the outbox write (a schedule's
   * occurrence, SPEC.md §18.3).
   */
  send(
    to: Array<{ id: string; name: string }>,
    content: Content,
    opts: { idFor?: (peer: string) => Uint8Array; ops?: BatchOp[] } = {}
  ): Promise<Accepted[]> {
    let items: Array<OutboxItem & { toName: string }>
    try {
      items = this.seal(to, content, opts.idFor)
    } catch (err) {
      return Promise.reject(err)
    }
    // not async (see Outbox.enqueue): what waits on the fsync is this closure and its items
    return this.components.outbox.enqueue(items, [], opts.ops).then(() => {
      this.stats.sent += items.length
      // the path is chosen once the items are durable: a channel that failed meanwhile has
      // moved its peer to the mailbox, and these must follow the ones before them
      // the outbox's own item objects: a copy per DM would be one more object each to keep until the ack
      for (const item of items) this.route(item)
      return items.map(i => ({ id: i.id, to: i.to, name: i.toName, status: 'pending' as const }))
    })
  }

  private seal(
    to: Array<{ id: string; name: string }>,
    content: Content,
    idFor?: (peer: string) => Uint8Array
  ): Array<OutboxItem & { toName: string }> {
    const now = Date.now()
    return to.map(r => {
      const pub = publicKeyOfPeer(r.id)
      if (pub == null) throw new Error(`"${r.id}" is not a session key`)
      const id = idFor?.(r.id) ?? newMessageId()
      const env = sealDm(this.init.meshId, this.keys.key(pub), { from: this.selfPub, to: pub, id, ts: now, exp: now + this.ttl }, content)
      return { id: idText(id), to: r.id, toName: r.name, env, createdAt: now, exp: now + this.ttl }
    })
  }

  /** Tell the senders that their messages were read (best effort). */
  receipts(messages: InboxMessage[]): void {
    const bySender = new Map<string, string[]>()
    for (const m of messages) {
      const ids = bySender.get(m.from)
      if (ids == null) bySender.set(m.from, [m.id])
      else ids.push(m.id)
    }
    for (const [peer, ids] of bySender) this.channel(peer).receipt(ids)
  }

  /**
   * The choke-point (SPEC.md §8.4). `from`, when given, is the authenticated remote peer of
   * the connection it came on; a direct envelope must come from its own sender. Resolves with
   * the id to acknowledge, or undefined when the envelope is refused.
   */
  async accept(bytes: Uint8Array, via: { from?: string } = {}): Promise<string | undefined> {
    const r = await this.receive(bytes, via)
    return r?.refuse == null ? r?.id : undefined
  }

  /**
   * Mail from a relay's mailbox counts against its sender's budget too. Refused for now, it is
   * tried again when the sender may retry; meanwhile it stays unanswered, so the relay keeps
   * it (and its delivery window holds back more of the same). After stop, never answered.
   * One sender's mail is taken in the order the relay hands it over: each waits for the one
   * before it, so a refused message is not overtaken by a later one whose retry came first.
   * `env` is `bytes` decoded once by the mailbox reader (it drops what does not decode).
   */
  private async acceptMail(bytes: Uint8Array, env: DmEnvelope): Promise<string | undefined> {
    const from = peerIdStringOfRaw(env.from)
    const prev = this.mailTail.get(from) ?? Promise.resolve()
    const mine = prev.then(async () => this.acceptMailNow(bytes, env))
    const tail = mine.then(
      () => {},
      () => {}
    )
    this.mailTail.set(from, tail)
    void tail.then(() => {
      if (this.mailTail.get(from) === tail) this.mailTail.delete(from)
    })
    return mine
  }

  /** the last mail of each sender being taken */
  private readonly mailTail = new Map<string, Promise<void>>()

  private async acceptMailNow(bytes: Uint8Array, env: DmEnvelope): Promise<string | undefined> {
    while (true) {
      const r = await this.receive(bytes, {}, env)
      if (r?.refuse == null) return r?.id
      if (this.stopped) return new Promise<never>(() => {})
      await new Promise(resolve => {
        setTimeout(resolve, r.refuse?.retryMs).unref()
      })
    }
  }

  /**
   * The choke-point proper: undefined for a rejected envelope, else the id and maybe a refusal.
   * `decoded`: `bytes` already through decodeDm (a relay's mail is decoded once, by its reader).
   */
  async receive(bytes: Uint8Array, via: { from?: string } = {}, decoded?: DmEnvelope): Promise<Received | undefined> {
    let env
    try {
      env = decoded ?? decodeDm(bytes)
    } catch (err) {
      return this.reject((err as Error).name === 'FrameTooLargeError' ? 'oversized' : 'malformed', via.from)
    }
    if (!equals(env.to, this.selfPub)) return this.reject('misaddressed', via.from)
    const sender = peerIdStringOfRaw(env.from)
    if (via.from != null && via.from !== sender) return this.reject('forged', via.from)
    const now = Date.now()
    // a blocked sender costs no decryption (its connection was authenticated)
    if (via.from != null) {
      const early = this.components.guard.earlyDm(sender, now)
      if (!early.ok) return this.refuse(idText(env.id), sender, early)
    }
    if (env.ts > now + c.MAX_CLOCK_SKEW_MS) return this.reject('future', sender)
    if (env.exp <= now || env.exp - env.ts > c.DEFAULT_TTL_MS * 4) return this.reject('expired', sender)
    let content: Content
    try {
      content = openDm(this.init.meshId, this.keys.key(env.from), env)
    } catch {
      return this.reject('tampered', sender)
    }
    const id = idText(env.id)
    const msg: InboxMessage = {
      id,
      from: sender,
      fromName: this.components.presence.nameOf(sender),
      to: this.components.libp2p.peerId.toString(),
      priority: content.pri,
      body: content.body,
      sentAt: env.ts,
      receivedAt: now
    }
    if (content.re != null) msg.replyTo = content.re
    // budgets and caps are charged for new messages only: a retry of a stored one is acked
    if (!this.components.inbox.has(id)) {
      const verdict = this.components.guard.admitDm(sender, Buffer.byteLength(msg.body), now)
      if (!verdict.ok) return this.refuse(id, sender, verdict)
    }
    if (await this.components.inbox.add(msg)) {
      this.stats.received++
      this.safeDispatchEvent('message:receive', { detail: msg })
    } else {
      this.stats.duplicates++
    }
    return { id }
  }

  private refuse(id: string, from: string, v: { ok: false; why: RefuseWhy; retryMs: number }): Received {
    this.stats.refused[v.why] = (this.stats.refused[v.why] ?? 0) + 1
    log.trace('refused a DM from %s for now (%s, retry in %d ms)', from, v.why, v.retryMs)
    return { id, refuse: { why: v.why, retryMs: Math.min(v.retryMs, c.MAX_RETRY_AFTER_MS) } }
  }

  private reject(reason: RejectReason, from?: string): undefined {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1
    log('refused a DM (%s) from %s', reason, from ?? 'unknown')
    this.safeDispatchEvent('message:reject', { detail: { reason, from } })
    return undefined
  }

  /**
   * Inbound stream (a libp2p stream or a same-home socket): envelopes in, acks (batched per
   * turn) and receipts handled. `from` is the authenticated remote peer.
   */
  private async serve(frames: FrameStream, from: string): Promise<void> {
    let acks: Uint8Array[] = []
    let refusals: Array<{ id: Uint8Array; why: RefuseWhy; ms: number }> = []
    // one ack frame per turn of the event loop: commits that finished together ack together
    const flusher = new TurnFlusher(
      () => {
        const out: Uint8Array[] = []
        while (acks.length > 0) out.push(encodeDmFrame({ t: 'a', ids: acks.splice(0, c.MAX_ACK_IDS) }))
        while (refusals.length > 0) {
          const refused = refusals.splice(0, c.MAX_ACK_IDS)
          // one frame per turn: the latest verdict's reason, the longest wait
          const last = refused[refused.length - 1] as { why: RefuseWhy }
          out.push(encodeDmFrame({ t: 'x', ids: refused.map(r => r.id), why: last.why, ms: Math.max(...refused.map(r => r.ms)) }))
        }
        return out
      },
      async out => {
        await frames.writeV(out)
      },
      () => {}
    )
    try {
      while (true) {
        const frame = decodeDmFrame(await frames.read())
        if (frame.t === 'm') {
          void this.receive(frame.e, { from }).then(
            r => {
              if (r == null) return
              if (r.refuse != null) refusals.push({ id: idBytes(r.id), why: r.refuse.why, ms: r.refuse.retryMs })
              else acks.push(idBytes(r.id))
              flusher.flush()
            },
            err => {
              log('accepting a DM from %s failed: %s', from, (err as Error).message)
            }
          )
        } else if (frame.t === 'r') {
          await this.onRead(from, frame.ids.map(idText))
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'UnexpectedEOFError') {
        log('dm stream from %s ended: %s', from, (err as Error).message)
        if ((err as Error).name === 'MalformedFrameError' || (err as Error).name === 'FrameTooLargeError') this.reject('malformed', from)
      }
      frames.abort(err as Error)
    } finally {
      acks = []
      refusals = []
    }
  }

  private channel(peer: string): Channel {
    let ch = this.channels.get(peer)
    if (ch == null) {
      ch = new Channel(peer, {
        connect: async (to, signal) => {
          // a peer of this home: its DM socket, no connection to build (SPEC.md §8.9)
          const local = await this.local?.open(to, signal)
          if (local != null) return local
          const id = this.peerIdOf(to)
          // the dialer learns the addresses presence holds for the peer (a courier's recipients
          // remembered from an earlier run, a peer whose record the peer store never got)
          await this.components.dialer.connect(id, { signal })
          const stream = await this.components.libp2p.dialProtocol(id, this.protocol, { signal, runOnLimitedConnection: true })
          return lpFrames(stream, c.MAX_DM_FRAME_BYTES)
        },
        pending: p => this.components.outbox.pending(p),
        onAck: async (p, ids) => this.onAck(p, ids),
        onRead: async (p, ids) => this.onRead(p, ids),
        onRefuse: (p, why, until) => {
          this.deferred.set(p, { why, until })
        },
        divert: ch => this.divert(ch)
      })
      this.channels.set(peer, ch)
    }
    return ch
  }

  private async onAck(peer: string, ids: string[]): Promise<void> {
    const done = await this.components.outbox.acked(peer, ids)
    if ((this.deferred.get(peer)?.until ?? Infinity) <= Date.now()) this.deferred.delete(peer)
    for (const id of done) this.safeDispatchEvent('message:status', { detail: { id, to: peer, status: 'delivered' } })
  }

  private async onRead(peer: string, ids: string[]): Promise<void> {
    // a read receipt implies the message is on the recipient's disk, even if its ack was lost
    const acked = await this.components.outbox.acked(peer, ids, 'read')
    for (const id of [...acked, ...(await this.components.outbox.advance(peer, ids, 'read'))]) {
      this.safeDispatchEvent('message:status', { detail: { id, to: peer, status: 'read' } })
    }
  }

  /** a blocked sender's same-home sockets close, as its connections do (SPEC.md §8.8) */
  private readonly onBlock = (evt: CustomEvent<{ peer: string }>): void => {
    this.local?.hangUp(evt.detail.peer)
  }

  private readonly onConnect = (evt: CustomEvent<Connection>): void => {
    this.channels.get(evt.detail.remotePeer.toString())?.kick()
  }

  private readonly onPresence = (evt: CustomEvent<{ id: string }>): void => {
    this.channels.get(evt.detail.id)?.kick()
    if (evt.type === 'peer:join') this.warm(evt.detail.id)
  }

  /**
   * Peers whose pair key is derived ahead of the first DM either way, as they come online: a
   * key costs ~75 µs (the Montgomery form's inversion, X25519, HKDF), paid otherwise inside the
   * first burst to each peer, at both ends (bench/load.mjs 100x100: ~12 % of the first burst's
   * CPU). Derived a few at a time in later turns, so a mesh's worth of joins stalls nothing.
   */
  private readonly warming: string[] = []
  private warmScheduled = false
  private warmedWaiters: Array<() => void> = []

  /** Resolves once every peer that came online so far has its pair key. */
  async warmed(): Promise<void> {
    if (!this.warmScheduled) return
    await new Promise<void>(resolve => this.warmedWaiters.push(resolve))
  }

  private warm(peer: string): void {
    // an optimisation only: a flood of joins (new session keys) does not grow it without bound
    if (this.warming.length >= MAX_WARMING) return
    this.warming.push(peer)
    if (this.warmScheduled) return
    this.warmScheduled = true
    setImmediate(this.warmSome)
  }

  private readonly warmSome = (): void => {
    const until = performance.now() + WARM_SLICE_MS
    while (this.warming.length > 0 && !this.stopped && performance.now() < until) {
      const pub = publicKeyOfPeer(this.warming.pop() as string)
      try {
        if (pub != null) this.keys.key(pub)
      } catch {
        // a key with no X25519 secret (low order): a DM to it fails when sent, as before
      }
    }
    this.warmScheduled = this.warming.length > 0 && !this.stopped
    if (this.warmScheduled) setImmediate(this.warmSome)
    else for (const done of this.warmedWaiters.splice(0)) done()
  }

  private async tick(): Promise<void> {
    this.components.guard.prune()
    for (const item of await this.components.outbox.expire()) {
      this.channels.get(item.to)?.forget([item.id])
      this.safeDispatchEvent('message:status', { detail: { id: item.id, to: item.to, status: 'failed' } })
    }
    for (const [peer, ch] of this.channels) {
      if (ch.idle && Date.now() - ch.lastActive > 30_000) {
        ch.close()
        this.channels.delete(peer)
      } else {
        ch.poll()
      }
    }
  }
}
