/**
 * Group messages (SPEC.md §9): `@group` and `@all` are gossipsub topics named by an HMAC of
 * the group, carrying envelopes sealed with the group key and signed by the sender. Every
 * node keeps the recent history of its groups and asks a peer for what it missed (ids it
 * already has are listed, so only the gap travels): on a new connection when the peer's sync
 * summary shows a history that differs from ours, and every ~15 s one random peer.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { EMPTY_HISTORY, historyDigest } from '../sync-summary.js'
import { type Ed25519PrivateKey, peerIdStringOfRaw } from '../identity/keys.js'
import type { Presence } from '../presence/presence.js'
import type { Sublevel } from '../store/index.js'
import type { MeshLibp2p } from '../transport/index.js'
import * as c from './constants.js'
import { groupKey, groupTopic } from '../crypto/index.js'
import { type Content, decodeGroup, decodeGroupHeader, type GroupEnvelope, idText, newMessageId, openGroup, sealGroup } from './envelope.js'
import type { Inbox, InboxMessage } from './inbox.js'
import type { FloodGuard } from './flood.js'

const log = logger('claudemesh:groups')

/** The name `@all` and `*` map to. */
export const ALL = '*'

const SyncRequestSchema = z
  .object({
    topics: z.array(z.string().max(128)).max(64),
    since: z.number().int().nonnegative(),
    have: z.array(zBytes({ len: 16 })).max(c.GROUP_SYNC_MAX)
  })
  .strict()

export interface GroupEvents {
  'message:receive': CustomEvent<InboxMessage>
  'message:reject': CustomEvent<{ reason: string; from?: string }>
}

export interface GroupsInit {
  meshId: string
  privateKey: Ed25519PrivateKey
  contentSecret: Uint8Array
}

export class Groups extends TypedEventEmitter<GroupEvents> {
  readonly stats = { sent: 0, received: 0, duplicates: 0, rejected: 0, synced: 0, overBudget: 0, dropped: 0 }
  /** topic → group name, for the groups this node is in (always including ALL) */
  private readonly topics = new Map<string, string>()
  private readonly protocol: string
  private readonly selfId: string
  private pruner?: ReturnType<typeof setInterval>
  private resyncTimer?: ReturnType<typeof setTimeout>
  /** envelopes whose signature the validator checked: delivery hands the same bytes to accept */
  private readonly verified = new WeakSet<Uint8Array>()
  /** topic → digest of its newest history (sync summary, SPEC.md §9.4), until the history changes */
  private readonly digests = new Map<string, Uint8Array>()
  /** bumped by every history change: a digest computed across one is not kept */
  private historyVersion = 0

  constructor(
    private readonly components: { libp2p: MeshLibp2p; presence: Presence; inbox: Inbox; history: Sublevel; guard: FloodGuard },
    private readonly init: GroupsInit
  ) {
    super()
    this.protocol = c.groupSyncProtocol(init.meshId)
    this.selfId = components.libp2p.peerId.toString()
  }

  async start(groups: string[]): Promise<void> {
    const { libp2p } = this.components
    libp2p.services.pubsub.addEventListener('message', this.onMessage)
    libp2p.services.pubsub.addEventListener('gossipsub:graft', this.onGraft)
    await libp2p.handle(
      this.protocol,
      (stream, conn) => {
        void this.serveSync(stream, conn)
      },
      { runOnLimitedConnection: true, maxInboundStreams: 8 }
    )
    for (const g of [ALL, ...groups]) this.join(g)
    this.pruner = setInterval(() => {
      void this.prune().catch(() => {})
    }, 3_600_000)
    this.pruner.unref()
    this.scheduleResync()
  }

  /**
   * Anti-entropy: gossip drops messages when a node is too busy to answer IWANTs in time or
   * its mesh changes under it (a flooder cut off), and sync on connect does not run again
   * while connections stay up. So every GROUP_RESYNC_MS (jittered) a node asks one random
   * connected peer of its groups for the last GROUP_RESYNC_WINDOW_MS of history it lacks.
   */
  private scheduleResync(): void {
    this.resyncTimer = setTimeout(
      () => {
        void this.resync().finally(() => {
          if (this.resyncTimer != null) this.scheduleResync()
        })
      },
      c.GROUP_RESYNC_MS * (0.5 + Math.random())
    )
    this.resyncTimer.unref()
  }

  /** One periodic sync with a random connected peer that shares a group; false when there is none. */
  async resync(): Promise<boolean> {
    const { libp2p } = this.components
    const pubsub = libp2p.services.pubsub
    const candidates = libp2p
      .getConnections()
      .filter(
        conn => conn.status === 'open' && [...this.topics.keys()].some(t => pubsub.getSubscribers(t).some(p => p.equals(conn.remotePeer)))
      )
    const conn = candidates[Math.floor(Math.random() * candidates.length)]
    if (conn == null) return false
    const topics = [...this.topics.keys()].filter(t => pubsub.getSubscribers(t).some(p => p.equals(conn.remotePeer)))
    await this.requestSync(conn, topics, c.GROUP_RESYNC_WINDOW_MS)
    return true
  }

  /** (peer, topic) pairs whose catch-up on graft is running */
  private readonly catchingUp = new Set<string>()

  /**
   * A member joined our mesh of a group's topic (either end grafted): ask it for the topic's
   * recent history. A message published before the publisher knew that member was subscribed
   * (it counts `pending`: a connection a few ms old, its subscriptions not yet exchanged)
   * reached nobody, and gossipsub forgets it: the graft that follows is the first sign the
   * two share the topic. Not for `*`: every node is in it, and its grafts are many (SPEC.md §9.4).
   */
  private readonly onGraft = (evt: CustomEvent<{ peerId: string; topic: string }>): void => {
    const { peerId, topic } = evt.detail
    const group = this.topics.get(topic)
    if (group == null || group === ALL) return
    const conn = this.components.libp2p.getConnections(peerIdFromString(peerId)).find(c => c.status === 'open')
    if (conn != null) this.catchUp(conn, topic)
  }

  /** Ask the peer for the topic's recent history, once at a time per peer and topic. */
  private catchUp(conn: Connection, topic: string, windowMs = c.GROUP_RESYNC_WINDOW_MS): void {
    const key = `${conn.remotePeer.toString()}/${topic}`
    if (this.catchingUp.has(key)) return
    this.catchingUp.add(key)
    void this.requestSync(conn, [topic], windowMs).finally(() => {
      this.catchingUp.delete(key)
    })
  }

  async stop(): Promise<void> {
    clearInterval(this.pruner)
    clearTimeout(this.resyncTimer)
    this.resyncTimer = undefined
    const { libp2p } = this.components
    libp2p.services.pubsub.removeEventListener('message', this.onMessage)
    libp2p.services.pubsub.removeEventListener('gossipsub:graft', this.onGraft)
    for (const topic of [...this.topics.keys()]) this.leaveTopic(topic)
    await libp2p.unhandle(this.protocol)
  }

  topicOf(group: string): string {
    return groupTopic(this.init.contentSecret, this.init.meshId, group)
  }

  join(group: string): void {
    const topic = this.topicOf(group)
    if (this.topics.has(topic)) return
    this.topics.set(topic, group)
    const pubsub = this.components.libp2p.services.pubsub
    pubsub.topicValidators.set(topic, async (peer, msg) => this.validate(topic, msg.data, peer.toString()))
    pubsub.subscribe(topic)
    for (const conn of this.components.libp2p.getConnections()) void this.requestSync(conn, [topic])
  }

  leave(group: string): void {
    if (group !== ALL) this.leaveTopic(this.topicOf(group))
  }

  private leaveTopic(topic: string): void {
    if (!this.topics.delete(topic)) return
    const pubsub = this.components.libp2p.services.pubsub
    pubsub.unsubscribe(topic)
    pubsub.topicValidators.delete(topic)
  }

  /**
   * Publish to a group; returns the id and how many peers gossipsub handed it to. `id` is
   * given when a re-send must dedupe at the recipients (a schedule's occurrence, §18.3).
   */
  async send(group: string, content: Content, id: Uint8Array = newMessageId()): Promise<{ id: string; recipients: number }> {
    const topic = this.topicOf(group)
    const ts = Date.now()
    const bytes = await sealGroup(
      this.init.meshId,
      groupKey(this.init.contentSecret, this.init.meshId, group),
      this.init.privateKey,
      { from: this.init.privateKey.publicKey.raw, topic, id, ts },
      { ...content, group }
    )
    await this.remember(topic, ts, idText(id), bytes)
    const r = await this.components.libp2p.services.pubsub.publish(topic, bytes)
    this.stats.sent++
    return { id: idText(id), recipients: r.recipients.length }
  }

  /**
   * Gossipsub's validator: only what passes is stored and forwarded. Flood control (SPEC.md
   * §8.8) charges the author's budget after the signature verifies and before anything is
   * stored; over budget the message is neither stored nor forwarded, and an author that keeps
   * publishing past it is blocked (then its messages cost no signature check).
   */
  private async validate(topic: string, data: Uint8Array, source: string): Promise<TopicValidatorResult> {
    const guard = this.components.guard
    try {
      const header = decodeGroupHeader(data)
      const author = peerIdStringOfRaw(header.from)
      const early = guard.earlyGroup(author, header.ct.byteLength, author === source)
      if (early !== 'accept') return this.overBudget(early === 'reject')
      const env = await decodeGroup(this.init.meshId, data)
      // an envelope for one group replayed on another group's topic is not that group's
      if (env.topic !== topic) throw new Error('envelope topic differs from the gossipsub topic')
      // a replay of a stored message costs its author nothing
      if (this.components.inbox.has(idText(env.id))) return TopicValidatorResult.Ignore
      const verdict = guard.admitGroup(author, env.ct.byteLength, author === source)
      if (verdict !== 'accept') return this.overBudget(verdict === 'reject')
      this.verified.add(data)
      return TopicValidatorResult.Accept
    } catch {
      this.stats.rejected++
      return TopicValidatorResult.Reject
    }
  }

  private overBudget(fromAuthor: boolean): TopicValidatorResult {
    this.stats.overBudget++
    return fromAuthor ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
  }

  private readonly onMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array }>): void => {
    if (!this.topics.has(evt.detail.topic)) return
    this.accept(evt.detail.data).catch(err => {
      log('storing a group message failed: %s', (err as Error).message)
    })
  }

  /**
   * The group choke-point: verify, open, check the topic matches, dedupe, store. `sync`: an
   * answer to our group sync, which no validator saw: it is charged to its author's budget
   * here (SPEC.md §8.8), so what a flood's forwarders stored does not reach us through
   * anti-entropy beyond that author's budget, however many of them there are.
   */
  async accept(bytes: Uint8Array, via: 'gossip' | 'sync' = 'gossip'): Promise<boolean> {
    let env: GroupEnvelope
    let content: Content
    try {
      if (via === 'sync') {
        const h = decodeGroupHeader(bytes)
        // out of budget: refused before the signature check, as the validator does
        if (this.components.guard.earlyGroup(peerIdStringOfRaw(h.from), h.ct.byteLength, false) !== 'accept') return this.syncOverBudget()
      }
      // one signature check per envelope: the validator's, when it saw these very bytes
      env = this.verified.has(bytes) ? decodeGroupHeader(bytes) : await decodeGroup(this.init.meshId, bytes)
      const group = this.topics.get(env.topic)
      if (group == null) return false
      content = openGroup(groupKey(this.init.contentSecret, this.init.meshId, group), env)
      if (content.group !== group) throw new Error('group name does not match its topic')
      if (env.ts > Date.now() + c.MAX_CLOCK_SKEW_MS || env.ts < Date.now() - c.GROUP_HISTORY_MS * 2)
        throw new Error('outside the freshness window')
    } catch (err) {
      this.stats.rejected++
      log('refused a group envelope: %s', (err as Error).message)
      this.safeDispatchEvent('message:reject', { detail: { reason: (err as Error).message } })
      return false
    }
    const from = peerIdStringOfRaw(env.from)
    if (from === this.selfId) return false
    // a blocked flooder's messages stay out by every path (group sync included), §8.8
    if (this.components.guard.blocked(from)) {
      this.stats.dropped++
      return false
    }
    const id = idText(env.id)
    const msg: InboxMessage = {
      id,
      from,
      fromName: this.components.presence.nameOf(from),
      to: content.group === ALL ? '@all' : `@${content.group ?? ''}`,
      group: content.group,
      priority: content.pri,
      body: content.body,
      sentAt: env.ts,
      receivedAt: Date.now()
    }
    if (content.re != null) msg.replyTo = content.re
    const fresh = !this.components.inbox.has(id)
    if (fresh && via === 'sync' && this.components.guard.admitGroup(from, env.ct.byteLength, false) !== 'accept')
      return this.syncOverBudget()
    // the inbox caps (SPEC.md §8.8): a group message cannot be refused, so past them it is dropped
    if (fresh && !this.components.guard.room(from, Buffer.byteLength(msg.body))) {
      this.stats.dropped++
      this.components.guard.drop(from)
      return false
    }
    await this.remember(env.topic, env.ts, id, bytes)
    if (!(await this.components.inbox.add(msg))) {
      this.stats.duplicates++
      return false
    }
    this.stats.received++
    this.safeDispatchEvent('message:receive', { detail: msg })
    return true
  }

  private async remember(topic: string, ts: number, id: string, bytes: Uint8Array): Promise<void> {
    this.historyChanged(topic)
    await this.components.history.put(`${topic}!${String(ts).padStart(16, '0')}!${id}`, bytes)
    this.historyChanged(topic)
  }

  private historyChanged(topic: string): void {
    this.historyVersion++
    this.digests.delete(topic)
  }

  /**
   * For the sync summary: each topic we are in → the digest of its newest history keys (the
   * `have` a sync request would list), from a cache that history changes clear.
   */
  async historyDigests(): Promise<Record<string, Uint8Array>> {
    const out: Record<string, Uint8Array> = {}
    for (const topic of this.topics.keys()) {
      let digest = this.digests.get(topic)
      if (digest == null) {
        const at = this.historyVersion
        const keys: string[] = []
        for await (const key of this.components.history.keys({
          gt: `${topic}!`,
          lt: `${topic}"`,
          reverse: true,
          limit: c.GROUP_SYNC_MAX
        })) {
          keys.push(key.slice(topic.length + 1))
        }
        digest = historyDigest(keys)
        if (at === this.historyVersion) this.digests.set(topic, digest)
      }
      out[topic] = digest
    }
    return out
  }

  /**
   * The sync on connect (SPEC.md §9.4): ask the peer for the topics we share whose history
   * differs from ours and is not empty on its side; for all our topics when its summary
   * carried no digests. The topics asked.
   */
  async syncOnConnect(conn: Connection, theirs?: Record<string, Uint8Array>): Promise<string[]> {
    let topics = [...this.topics.keys()]
    if (theirs != null) {
      const ours = await this.historyDigests()
      topics = topics.filter(t => {
        const d = theirs[t]
        return d != null && !equals(d, EMPTY_HISTORY) && (ours[t] == null || !equals(d, ours[t]))
      })
    }
    // no history to ask for: no stream (each costs both ends a negotiation)
    if (topics.length > 0) await this.requestSync(conn, topics)
    return topics
  }

  private syncOverBudget(): false {
    this.stats.overBudget++
    return false
  }

  /** Ask a peer for the recent history of our groups that we lack (all of it on a new connection). */
  private async requestSync(conn: Connection, topics: string[], windowMs = c.GROUP_HISTORY_MS): Promise<void> {
    const since = Date.now() - windowMs
    const have: Uint8Array[] = []
    let stream: Stream | undefined
    try {
      for (const topic of topics) {
        for await (const key of this.components.history.keys({
          gte: `${topic}!${String(since).padStart(16, '0')}`,
          lt: `${topic}"`,
          reverse: true,
          limit: c.GROUP_SYNC_MAX
        })) {
          if (have.length < c.GROUP_SYNC_MAX) have.push(new Uint8Array(Buffer.from(key.slice(key.lastIndexOf('!') + 1), 'hex')))
        }
      }
      stream = await conn.newStream(this.protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
      const lp = lpStream(stream, { maxDataLength: c.MAX_ENVELOPE_BYTES })
      await lp.write(encodeFrame({ topics, since, have }))
      for (let i = 0; i < c.GROUP_SYNC_MAX; i++) {
        const frame = await lp.read({ signal: AbortSignal.timeout(10_000) })
        if (await this.accept(frame.subarray(), 'sync')) this.stats.synced++
      }
    } catch (err) {
      if ((err as Error).name !== 'UnexpectedEOFError') log('group sync with %p failed: %s', conn.remotePeer, (err as Error).message)
    } finally {
      stream?.abort(new Error('done'))
    }
  }

  private async serveSync(stream: Stream, conn: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: c.MAX_ENVELOPE_BYTES })
    try {
      const req = decodeFrame(
        (await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray(),
        SyncRequestSchema,
        c.MAX_ENVELOPE_BYTES,
        'group sync request'
      )
      const have = new Set(req.have.map(idText))
      const topics = req.topics.filter(t => this.topics.has(t))
      /** every id of those topics' history in the window, while it was read to the end */
      const ours = new Set<string>()
      let whole = true
      let sent = 0
      for (const topic of topics) {
        for await (const [key, value] of this.components.history.iterator({
          gte: `${topic}!${String(req.since).padStart(16, '0')}`,
          lt: `${topic}"`
        })) {
          const id = key.slice(key.lastIndexOf('!') + 1)
          ours.add(id)
          if (have.has(id)) continue
          if (sent++ >= c.GROUP_SYNC_MAX) {
            whole = false
            break
          }
          await lp.write(value)
        }
      }
      await stream.close()
      // the requester holds messages of these topics that we lack (its own, published before it
      // knew we were subscribed, reached nobody): ask it for them in turn. A graft at its end
      // only is otherwise no catch-up for us, and they would wait for a resync
      if (whole && [...have].some(id => !ours.has(id) && !this.components.inbox.has(id))) {
        const windowMs = Math.min(c.GROUP_HISTORY_MS, Math.max(c.GROUP_RESYNC_WINDOW_MS, Date.now() - req.since))
        for (const topic of topics) this.catchUp(conn, topic, windowMs)
      }
    } catch (err) {
      log('serving group sync to %p failed: %s', conn.remotePeer, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  /** Drop history older than the window (called periodically). */
  async prune(now = Date.now()): Promise<void> {
    const cutoff = now - c.GROUP_HISTORY_MS
    for (const topic of this.topics.keys()) {
      this.historyChanged(topic)
      await this.components.history.clear({ gte: `${topic}!`, lt: `${topic}!${String(cutoff).padStart(16, '0')}` })
      this.historyChanged(topic)
    }
  }
}
