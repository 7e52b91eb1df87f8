/**
 * What a human may do from the page, as that session (SPEC.md §19.4): each action checks its
 * JSON body with zod, then makes one control call on the node, which checks it again and
 * answers with the same errors the CLI shows. Nothing else on the node is reachable from HTTP.
 */
import { PRIORITIES, type SendResult } from '@claudemesh/node/client'
import { z } from 'zod'
import type { ControlClient } from '@claudemesh/node/client'
import { UsageError } from '../output.js'
import type { UiFeed } from './feed.js'

export interface ActionContext {
  client: ControlClient
  feed: UiFeed
}
export type Action = (body: unknown, ctx: ActionContext) => Promise<unknown>

const target = z.string().trim().min(1).max(256)
const SendBody = z
  .object({
    // "bob, @team" as typed in one field, or a list
    to: z.union([z.string().max(64 * 257), z.array(target).min(1).max(64)]),
    message: z
      .string()
      .min(1)
      .max(64 * 1024),
    priority: z.enum(PRIORITIES).optional()
  })
  .strict()
const StateBody = z.object({ key: z.string().min(1).max(256), value: z.unknown() }).strict()
const RememberBody = z
  .object({
    content: z
      .string()
      .min(1)
      .max(16 * 1024),
    tags: z.array(z.string().min(1).max(64)).max(16).optional()
  })
  .strict()
const RecallBody = z.object({ query: z.string().min(1).max(1000), limit: z.number().int().min(1).max(100).optional() }).strict()

/** Parse or throw one clear line naming the first bad field. */
function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  throw new UsageError(`invalid ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'bad input'}`)
}

export const ACTIONS: Record<string, Action> = {
  send: async (body, { client, feed }) => {
    const p = parse(SendBody, body)
    const to = Array.isArray(p.to)
      ? p.to
      : p.to
          .split(',')
          .map(t => t.trim())
          .filter(Boolean)
    if (to.length === 0) throw new UsageError('invalid to: name a peer, @group or @all')
    const r = await client.call<{ results: SendResult[] }>('send', { to, message: p.message, priority: p.priority })
    for (const x of r.results) feed.remember(x.id, p.message)
    await feed.refresh(['sent', 'inbox'])
    return r
  },
  state: async (body, { client, feed }) => {
    const p = parse(StateBody, body)
    const r = await client.call('state.set', { key: p.key, value: p.value })
    await feed.refresh(['state'])
    return r
  },
  remember: async (body, { client, feed }) => {
    const p = parse(RememberBody, body)
    const r = await client.call('memory.remember', { content: p.content, tags: p.tags })
    await feed.refresh(['self'])
    return r
  },
  recall: async (body, { client }) => {
    const p = parse(RecallBody, body)
    return client.call('memory.recall', { query: p.query, limit: p.limit ?? 20 })
  }
}
