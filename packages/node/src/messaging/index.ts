/**
 * Messaging: the face the node, the control socket and the MCP server use. `send` resolves
 * targets and hands DMs to the outbox and group messages to gossipsub; `check` reads the
 * inbox and marks what it hands out as read (sending read receipts); `status` reports each
 * message's delivery state.
 */
import { TypedEventEmitter } from 'main-event'
import { InvalidMessageError, MessageTooLargeError } from '../errors.js'
import type { Presence } from '../presence/presence.js'
import * as c from './constants.js'
import type { DirectMessages, DmEvents } from './dm.js'
import { ALL, type Groups } from './groups.js'
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

/** A resolved target, or this session itself (a reminder, SPEC.md §18). */
export type DeliveryTarget = Target | { kind: 'self' }

/** The checks `send` applies to a body, for anything that sends one later (schedules). */
export function checkBody (body: string): void {
  if (typeof body !== 'string' || body.trim() === '') throw new InvalidMessageError('the message is empty')
  const size = Buffer.byteLength(body)
  if (size > c.MAX_BODY_BYTES) throw new MessageTooLargeError(`the message is ${size} bytes; the limit is ${c.MAX_BODY_BYTES} bytes (64 KiB): share large content through state or memory`)
}

export interface SendOptions { priority?: c.Priority, replyTo?: string }
export interface SendResult { to: string, name: string, id: string, status: DeliveryStatus }
export interface CheckResult { messages: InboxMessage[], remaining: number }

export class Messaging extends TypedEventEmitter<DmEvents> {
  constructor (readonly dm: DirectMessages, readonly groups: Groups, readonly inbox: Inbox, readonly outbox: Outbox, private readonly presence: Presence) {
    super()
    for (const source of [dm, groups] as EventTarget[]) {
      for (const t of ['message:receive', 'message:status', 'message:reject']) {
        source.addEventListener(t, evt => { this.safeDispatchEvent(t as keyof DmEvents, { detail: (evt as CustomEvent).detail }) })
      }
    }
  }

  async send (to: string | string[], body: string, opts: SendOptions = {}): Promise<SendResult[]> {
    checkBody(body)
    if (opts.replyTo != null && !/^[0-9a-f]{32}$/.test(opts.replyTo)) throw new InvalidMessageError(`reply_to "${opts.replyTo}" is not a message id`)
    const targets = resolveTargets(Array.isArray(to) ? to : [to], this.presence.list(), this.presence.selfId)
    if (targets.length === 0) throw new InvalidMessageError('no recipient')
    const content = { body, pri: opts.priority ?? 'next' as const, ...(opts.replyTo != null ? { re: opts.replyTo } : {}) }
    return this.deliver(targets, content)
  }

  /**
   * Hand resolved targets their message: groups are published, this session's own inbox
   * (a reminder) written, DMs queued. `idFor(key)` fixes the id per target (key: a peer id,
   * `@group` or `self`) so that a repeat dedupes at every recipient, and `ops` join the last
   * durable write, which is the DM outbox write when there are DMs (SPEC.md §18.3).
   */
  async deliver (targets: DeliveryTarget[], content: Content, opts: { idFor?: (key: string) => Uint8Array, ops?: BatchOp[] } = {}): Promise<SendResult[]> {
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
    const peers = targets.flatMap(t => (t.kind === 'peer' ? [{ id: t.id, name: t.name }] : []))
    if (peers.length > 0) {
      for (const a of await this.dm.send(peers, content, opts)) results.push({ to: a.to, name: a.name, id: a.id, status: a.status })
    } else if (opts.ops != null && opts.ops.length > 0) {
      await this.outbox.enqueue([], [], opts.ops)
    }
    return results
  }

  /** A reminder: straight into this session's inbox, announced like any arrival. */
  private async toSelf (content: Content, id: Uint8Array = newMessageId()): Promise<SendResult> {
    const self = this.presence.self()
    const now = Date.now()
    const msg: InboxMessage = { id: idText(id), from: self.id, fromName: self.name, to: self.id, priority: content.pri, body: content.body, sentAt: now, receivedAt: now }
    if (await this.inbox.add(msg)) this.safeDispatchEvent('message:receive', { detail: msg })
    return { to: self.id, name: self.name, id: msg.id, status: 'delivered' }
  }

  /** Unread (or all) messages, oldest first; marks them read unless told not to. */
  async check (opts: { limit?: number, unreadOnly?: boolean, markRead?: boolean } = {}): Promise<CheckResult> {
    const limit = Math.max(1, Math.min(opts.limit ?? 20, 500))
    // unread: the oldest first, so nothing is skipped; everything: the latest `limit`
    let messages = await this.inbox.list({ unreadOnly: opts.unreadOnly !== false, limit, newest: opts.unreadOnly === false })
    if (opts.markRead !== false) {
      const read = new Set((await this.markRead(messages.map(m => m.id))).map(m => m.id))
      // a push that marked one meanwhile has shown it: an unread pull returns each message once
      if (opts.unreadOnly !== false) messages = messages.filter(m => read.has(m.id))
    }
    const shownUnread = opts.markRead === false ? messages.filter(m => m.readAt == null).length : 0
    return { messages, remaining: this.inbox.unread - shownUnread }
  }

  async markRead (ids: string[]): Promise<InboxMessage[]> {
    const read = await this.inbox.markRead(ids)
    this.dm.receipts(read)
    return read
  }

  async status (id: string): Promise<MessageStatus | undefined> {
    return this.outbox.status(id)
  }
}
