/**
 * The claudemesh MCP server for one session's node: tools, per-session instructions, the
 * coordination prompt, the channel push path, and the control methods the hooks call.
 */
import { type InboxMessage, type MeshNode, sanitizeLine } from '@claudemesh/node'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { z } from 'zod'
import { Delivery, fenceMessage, type MessageMode, type Opportunity } from './delivery.js'
import { COORDINATION_GUIDE, instructions } from './instructions.js'
import { registerTools } from './tools.js'

export const VERSION = '0.1.0'
/** What may wake a waiting hook: a message, or task news (lost, contested, assigned or noticed with high priority). */
const NEWS = ['message:receive', 'task:lost', 'task:conflict', 'task:assigned', 'task:notice'] as const

export interface ClaudemeshServerInit {
  /** initial message mode; otherwise the session's saved mode, else push */
  mode?: MessageMode
  /** send `notifications/claude/channel` pushes (the client must have channels enabled) */
  channels?: boolean
}

export class ClaudemeshServer {
  readonly mcp: McpServer
  readonly delivery: Delivery
  private initialized = false
  private readonly onMessage = (): void => {
    void this.pushChannel()
  }

  private constructor(
    readonly node: MeshNode,
    delivery: Delivery,
    private readonly init: ClaudemeshServerInit
  ) {
    this.delivery = delivery
    this.mcp = new McpServer(
      { name: 'claudemesh', version: VERSION },
      {
        capabilities: { experimental: { 'claude/channel': {} } },
        instructions: instructions(node, delivery.mode)
      }
    )
    registerTools(this.mcp, node, delivery)
    this.mcp.registerPrompt(
      'coordination',
      {
        title: 'Group coordination guide',
        description: 'How a lead gathers answers, how reviewers reply, how to use state for votes and hand-offs'
      },
      () => ({ messages: [{ role: 'user', content: { type: 'text', text: COORDINATION_GUIDE } }] })
    )
    this.mcp.registerResource(
      'guide',
      'claudemesh://guide',
      { title: 'Group coordination guide', mimeType: 'text/markdown' },
      async uri => ({ contents: [{ uri: uri.href, text: COORDINATION_GUIDE }] })
    )
    this.mcp.server.oninitialized = () => {
      this.initialized = true
      void this.pushChannel()
    }
    for (const type of NEWS) node.addEventListener(type, this.onMessage)
  }

  static async create(node: MeshNode, init: ClaudemeshServerInit = {}): Promise<ClaudemeshServer> {
    const delivery = new Delivery(node)
    await delivery.load(init.mode)
    const server = new ClaudemeshServer(node, delivery, init)
    server.registerHookMethods()
    return server
  }

  async connect(transport: Transport): Promise<void> {
    await this.mcp.connect(transport)
  }

  async close(): Promise<void> {
    for (const type of NEWS) this.node.removeEventListener(type, this.onMessage)
    await this.settled()
    await this.mcp.close()
  }

  /**
   * Channel path: one notification per message, only after initialization, when enabled.
   * Arrivals come in bursts: one push loop runs at a time, an arrival during it asks for one
   * more round, and a round repeats while its take found something (a take is bounded by the
   * text budget), so nothing due is left waiting for the next arrival.
   */
  private pushChannel(): Promise<void> {
    if (this.init.channels !== true || !this.initialized) return this.pushing
    this.pushAgain = true
    if (!this.pushBusy) {
      this.pushBusy = true
      this.pushing = this.pushLoop().finally(() => {
        this.pushBusy = false
      })
    }
    return this.pushing
  }

  private pushBusy = false
  private pushAgain = false
  private pushing: Promise<void> = Promise.resolve()

  /** Resolves when no channel push is running (tests, and a clean close). */
  async settled(): Promise<void> {
    while (this.pushBusy) await this.pushing
  }

  private async pushLoop(): Promise<void> {
    while (this.pushAgain && this.node.running) {
      this.pushAgain = false
      const push = await this.delivery.take('channel').catch(() => undefined)
      if (push == null) return
      let sent = 0
      try {
        for (const m of push.messages) {
          await this.notify(fenceMessage(m), channelMeta(m))
          sent++
        }
        if (push.notice != null) await this.notify(push.notice, {})
      } catch (err) {
        // the transport is gone: what was not sent is unread again for the other paths
        await this.delivery.giveBack({ ...push, messages: push.messages.slice(sent) }).catch(() => {})
        if (this.node.running) process.stderr.write(`claudemesh: channel push failed: ${(err as Error).message}\n`)
        return
      }
      if (push.messages.length > 0 || push.notice != null) this.pushAgain = true
    }
  }

  private async notify(content: string, meta: Record<string, string>): Promise<void> {
    await this.mcp.server.notification({ method: 'notifications/claude/channel', params: { content, meta } })
  }

  /** What the hooks call through the control socket (SPEC.md §13.3). */
  private registerHookMethods(): void {
    const events = ['session-start', 'user-prompt-submit', 'post-tool-use', 'stop'] as const
    this.node.registerControl('hook', z.object({ event: z.enum(events) }).strict(), async p => {
      if (p.event === 'user-prompt-submit') await this.setStatus('working')
      if (p.event === 'stop' || p.event === 'session-start') await this.setStatus('idle')
      const push = await this.delivery.take(p.event as Opportunity)
      return { text: push.text ?? null, ids: [...push.messages, ...push.noticed].map(m => m.id) }
    })
    this.node.registerControl(
      'hook.wait',
      z
        .object({
          event: z.enum(['stop', 'session-start']),
          timeoutMs: z
            .number()
            .int()
            .min(0)
            .max(24 * 3600_000)
        })
        .strict(),
      async (p, signal) => {
        await this.setStatus('idle')
        return { text: await this.waitFor(p.event, p.timeoutMs, signal) }
      }
    )
  }

  private async setStatus(status: 'idle' | 'working'): Promise<void> {
    const self = this.node.self()
    if (self.status !== status && self.status !== 'dnd') await this.node.setPresence({ status })
  }

  /**
   * Resolve with the text due at `event` as soon as there is some, or null at the timeout.
   * Checks never overlap and never miss an arrival; if the hook is gone (its connection
   * closed) by the time a check took messages, they are given back as unread.
   */
  private async waitFor(event: Opportunity, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
    return new Promise(resolve => {
      let busy = false
      let again = false
      let done = false
      const finish = (text: string | null): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        for (const type of NEWS) this.node.removeEventListener(type, check)
        signal.removeEventListener('abort', stop)
        resolve(text)
      }
      const check = (): void => {
        if (done) return
        if (busy) {
          again = true
          return
        }
        busy = true
        again = false
        this.delivery.take(event, true).then(
          async p => {
            busy = false
            if (p.text == null) {
              if (again) check()
              return
            }
            if (done || signal.aborted) await this.delivery.giveBack(p)
            else finish(p.text)
          },
          () => {
            busy = false
          }
        )
      }
      // a check still running when we stop sees `done` and gives its messages back
      const stop = (): void => {
        finish(null)
      }
      const timer = setTimeout(stop, timeoutMs)
      for (const type of NEWS) this.node.addEventListener(type, check)
      signal.addEventListener('abort', stop, { once: true })
      check()
    })
  }
}

/** Channel `meta`: string values, every peer-supplied one sanitized to one line (SPEC.md §13.1). */
export function channelMeta(m: InboxMessage): Record<string, string> {
  const meta: Record<string, string> = {
    from_name: sanitizeLine(m.fromName, 64),
    from_id: sanitizeLine(m.from, 80),
    message_id: sanitizeLine(m.id, 64),
    priority: sanitizeLine(m.priority, 8)
  }
  if (m.group != null) meta.group = sanitizeLine(m.group, 80)
  if (m.replyTo != null) meta.reply_to = sanitizeLine(m.replyTo, 64)
  return meta
}
