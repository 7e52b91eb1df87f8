/**
 * Messaging: the face the node, the control socket and the MCP server use. `send` resolves
 * targets and hands DMs to the outbox and group messages to gossipsub; `check` reads the
 * inbox and marks what it hands out as read (sending read receipts); `status` reports each
 * message's delivery state.
 */
import { TypedEventEmitter } from 'main-event'
import { InvalidMessageError, MessageTooLargeError, RateLimitedError } from '../errors.js'
import type { Presence } from '../presence/presence.js'
import * as c from './constants.js'
import type { DirectMessages, DmEvents } from './dm.js'
import { ALL, type Groups } from './groups.js'
import type { FloodGuard } from './flood.js'
import type { Inbox, InboxMessage } from './inbox.js'
import { newStatus, type DeliveryStatus, type MessageStatus, type Outbox } from './outbox.js'
import type { BatchOp } from '../store/commit.js'
import { type Content, idText, newMessageId } from './envelope.js'
import { resolveTargets, type Target } from './resolve.js'

export { ALL } from './groups.js'
export { MAX_BODY_BYTES, PRIORITIES, type Priority } from './constants.js'
export type { InboxMessage } from './inbox.js'
export type { DeliveryStatus, MessageStatus } from './outbox.js'
export type { RejectReason } from './dm.js'
export { DEFAULT_LIMITS, type FloodLimits, type FloodReport } from './flood.js'

/** A resolved target, or this session itself (a reminder, SPEC.md §18). */
export type DeliveryTarget = Target | { kind: 'self' }

/** The checks `send` applies to a body, for anything that sends one later (schedules). */
export function checkBody(body: string): void {
  if (typeof body !== 'string' || body.trim() === '') throw new InvalidMessageError('the message is empty')
  const size = Buffer.byteLength(body)
  if (size > c.MAX_BODY_BYTES)
    throw new MessageTooLargeError(
      `the message is ${size} bytes; the limit is ${c.MAX_BODY_BYTES} bytes (64 KiB): share large content through state or memory`
    )
}

export interface SendOptions {
  priority?: c.Priority
  replyTo?: string
}
export interface SendResult {
  to: string
  name: string
  id: string
  status: DeliveryStatus
}
/** A sender whose unread messages were not all returned: `count` more wait (SPEC.md §8.8). */
export interface HeldBack {
  from: string
  name: string
  count: number
}
/**
 * `held`: unread left behind per sender when the unread did not all fit (fair order);
 * `refused`: senders whose messages this node refused or dropped for flood control.
 */
export interface CheckResult {
  messages: InboxMessage[]
  remaining: number
  held?: HeldBack[]
  refused?: Array<{ from: string; name: string; refused: number; dropped: number; blocked: boolean }>
}

export class Messaging extends TypedEventEmitter<DmEvents> {
  constructor(
    readonly dm: DirectMessages,
    readonly groups: Groups,
    readonly inbox: Inbox,
    readonly outbox: Outbox,
    private readonly presence: Presence,
    readonly guard: FloodGuard
  ) {
    super()
    for (const source of [dm, groups] as EventTarget[]) {
      for (const t of ['message:receive', 'message:status', 'message:reject']) {
        source.addEventListener(t, evt => {
          this.safeDispatchEvent(t as keyof DmEvents, { detail: (evt as CustomEvent).detail })
        })
      }
    }
  }

  async send(to: string | string[], body: string, opts: SendOptions = {}): Promise<SendResult[]> {
    checkBody(body)
    if (opts.replyTo != null && !/^[0-9a-f]{32}$/.test(opts.replyTo))
      throw new InvalidMessageError(`reply_to "${opts.replyTo}" is not a message id`)
    const targets = resolveTargets(Array.isArray(to) ? to : [to], this.presence, this.presence.selfId)
    if (targets.length === 0) throw new InvalidMessageError('no recipient')
    const content = { body, pri: opts.priority ?? ('next' as const), ...(opts.replyTo != null ? { re: opts.replyTo } : {}) }
    for (const t of targets) {
      if (t.kind !== 'group') continue
      // receivers drop group messages past their budget: say so here rather than lose them there
      const wait = this.guard.selfGroup(Buffer.byteLength(body))
      if (wait != null)
        throw new RateLimitedError(
          `too many group messages: at most ${this.guard.limits.group.rate / 2} a second (${Math.floor(this.guard.limits.group.burst / 2)} at once); try again in ${Math.ceil(wait / 1000)} s`
        )
    }
    return this.deliver(targets, content)
  }

  /**
   * Hand resolved targets their message: groups are published, this session's own inbox
   * (a reminder) written, DMs queued. `idFor(key)` fixes the id per target (key: a peer id,
   * `@group` or `self`) so that a repeat dedupes at every recipient, and `ops` join the last
   * durable write, which is the DM outbox write when there are DMs (SPEC.md §18.3).
   */
  deliver(
    targets: DeliveryTarget[],
    content: Content,
    opts: { idFor?: (key: string) => Uint8Array; ops?: BatchOp[] } = {}
  ): Promise<SendResult[]> {
    return targets.every(t => t.kind === 'peer') ? this.sendDms(targets, content, opts, []) : this.deliverAll(targets, content, opts)
  }

  private async deliverAll(
    targets: DeliveryTarget[],
    content: Content,
    opts: { idFor?: (key: string) => Uint8Array; ops?: BatchOp[] }
  ): Promise<SendResult[]> {
    const results: SendResult[] = []
    for (const t of targets) {
      if (t.kind !== 'group') continue
      const label = t.group === ALL ? '@all' : `@${t.group}`
      const r = await this.groups.send(t.group, content, opts.idFor?.(`@${t.group}`))
      const status: DeliveryStatus = r.recipients > 0 ? 'delivered' : 'pending'
      await this.outbox.enqueue([], [newStatus(r.id, label, label, status, Date.now(), t.group)])
      results.push({ to: label, name: label, id: r.id, status })
    }
    if (targets.some(t => t.kind === 'self')) results.push(await this.toSelf(content, opts.idFor?.('self')))
    return this.sendDms(targets, content, opts, results)
  }

  /**
   * The DMs among `targets`, after `results`. Not async, like what it calls (Outbox.enqueue):
   * a send waiting on the outbox's fsync keeps no suspended async function (their locals), and
   * a burst keeps thousands waiting there.
   */
  private sendDms(
    targets: DeliveryTarget[],
    content: Content,
    opts: { idFor?: (key: string) => Uint8Array; ops?: BatchOp[] },
    results: SendResult[]
  ): Promise<SendResult[]> {
    const peers = targets.flatMap(t => (t.kind === 'peer' ? [{ id: t.id, name: t.name }] : []))
    if (peers.length > 0) {
      return this.dm.send(peers, content, opts).then(accepted => {
        for (const a of accepted) results.push({ to: a.to, name: a.name, id: a.id, status: a.status })
        return results
      })
    }
    if (opts.ops != null && opts.ops.length > 0) return this.outbox.enqueue([], [], opts.ops).then(() => results)
    return Promise.resolve(results)
  }

  /** A reminder: straight into this session's inbox, announced like any arrival. */
  private async toSelf(content: Content, id: Uint8Array = newMessageId()): Promise<SendResult> {
    const self = this.presence.self()
    const now = Date.now()
    const msg: InboxMessage = {
      id: idText(id),
      from: self.id,
      fromName: self.name,
      to: self.id,
      priority: content.pri,
      body: content.body,
      sentAt: now,
      receivedAt: now
    }
    if (await this.inbox.add(msg)) this.safeDispatchEvent('message:receive', { detail: msg })
    return { to: self.id, name: self.name, id: msg.id, status: 'delivered' }
  }

  /**
   * Unread messages, fairly: one per sender in turn, each sender's oldest first (a flood never
   * buries another sender's message); or everything, the latest `limit`. Marks them read
   * unless told not to.
   */
  async check(opts: { limit?: number; unreadOnly?: boolean; markRead?: boolean } = {}): Promise<CheckResult> {
    const limit = Math.max(1, Math.min(opts.limit ?? 20, 500))
    let messages: InboxMessage[]
    let held: HeldBack[] = []
    if (opts.unreadOnly === false) {
      messages = await this.inbox.list({ unreadOnly: false, limit, newest: true })
    } else {
      const fair = await this.inbox.fair(limit)
      messages = fair.messages
      held = fair.held.map(h => ({ ...h, name: this.nameOf(h.from, messages) }))
    }
    if (opts.markRead !== false) {
      const read = new Set((await this.markRead(messages.map(m => m.id))).map(m => m.id))
      // a push that marked one meanwhile has shown it: an unread pull returns each message once
      if (opts.unreadOnly !== false) messages = messages.filter(m => read.has(m.id))
    }
    const shownUnread = opts.markRead === false ? messages.filter(m => m.readAt == null).length : 0
    const refused = this.guard
      .report()
      .slice(0, 10)
      .map(r => ({
        from: r.peer,
        name: this.nameOf(r.peer, messages),
        refused: r.refused,
        dropped: r.dropped,
        blocked: r.blockedUntil != null
      }))
    return {
      messages,
      remaining: this.inbox.unread - shownUnread,
      ...(held.length > 0 ? { held } : {}),
      ...(refused.length > 0 ? { refused } : {})
    }
  }

  private nameOf(peer: string, messages: InboxMessage[]): string {
    return this.presence.get(peer)?.name ?? messages.find(m => m.from === peer)?.fromName ?? ''
  }

  async markRead(ids: string[]): Promise<InboxMessage[]> {
    const read = await this.inbox.markRead(ids)
    this.dm.receipts(read)
    return read
  }

  /** A pending DM its recipient refused for now (flood control) says why and until when. */
  async status(id: string): Promise<MessageStatus | undefined> {
    const s = await this.outbox.status(id)
    const d = s?.status === 'pending' ? this.dm.deferred.get(s.to) : undefined
    if (s == null || d == null || d.until < Date.now()) return s
    return { ...s, error: `the recipient refused it for now (${d.why}); retrying after ${new Date(d.until).toISOString()}` }
  }
}
