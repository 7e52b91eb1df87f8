// A scripted stand-in for the Anthropic Messages API, for driving the real `claude` offline.
import { EventEmitter } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ContentBlock {
  type: string
  text?: string
  content?: unknown
  tool_use_id?: string
  [k: string]: unknown
}
export interface Message {
  role: string
  content: string | ContentBlock[]
}
export interface MessagesBody {
  model: string
  system?: string | ContentBlock[]
  messages: Message[]
  tools?: Array<{ name: string; [k: string]: unknown }>
  stream?: boolean
  [k: string]: unknown
}

/** One POST /v1/messages, as Claude Code sent it. */
export interface ApiRequest {
  /** Position among all /v1/messages requests. */
  seq: number
  path: string
  headers: IncomingMessage['headers']
  body: MessagesBody
  /** A main-conversation call (it carries `tools`); false for side calls (titles, quota, haiku…). */
  main: boolean
  stream: boolean
}

export type Reply = { text: string } | { toolUse: { name: string; input: object; id?: string }; text?: string }

/** Decides each reply; `index` counts requests of the same kind (main or side) from 0. Return undefined for the default. */
export type Script = (req: ApiRequest, index: number) => Reply | undefined | Promise<Reply | undefined>

export interface FakeApi {
  /** Base URL for ANTHROPIC_BASE_URL. */
  url: string
  /** Every /v1/messages request, in arrival order. */
  requests: ApiRequest[]
  /** Only the main-conversation requests. */
  main: () => ApiRequest[]
  /** Every other request (count_tokens, /api/hello, …) as "METHOD path". */
  other: string[]
  /** Errors thrown by the script (the reply then says so, so the run does not hang). */
  errors: unknown[]
  /** Resolves with the first request (past or future) that matches. */
  waitFor: (pred: (req: ApiRequest) => boolean, timeoutMs?: number) => Promise<ApiRequest>
  close: () => Promise<void>
}

const SIDE_REPLY: Reply = { text: 'ok' }
const MAIN_REPLY: Reply = { text: 'fake reply' }

export async function startFakeApi(script: Script = () => undefined): Promise<FakeApi> {
  const requests: ApiRequest[] = []
  const other: string[] = []
  const errors: unknown[] = []
  const events = new EventEmitter()
  let toolIds = 0

  async function onMessages(path: string, req: IncomingMessage, body: MessagesBody, res: ServerResponse): Promise<void> {
    const main = Array.isArray(body.tools) && body.tools.length > 0
    const request: ApiRequest = { seq: requests.length, path, headers: req.headers, body, main, stream: body.stream === true }
    const index = requests.filter(r => r.main === main).length
    requests.push(request)
    events.emit('request', request)
    let reply: Reply
    try {
      reply = (await script(request, index)) ?? (main ? MAIN_REPLY : SIDE_REPLY)
    } catch (err) {
      errors.push(err)
      reply = { text: `fake-api script error: ${String(err)}` }
    }
    const content: ContentBlock[] = []
    if ('toolUse' in reply) {
      if (reply.text != null) content.push({ type: 'text', text: reply.text })
      const id = reply.toolUse.id ?? `toolu_fake_${String(++toolIds).padStart(4, '0')}`
      content.push({ type: 'tool_use', id, name: reply.toolUse.name, input: reply.toolUse.input })
    } else {
      content.push({ type: 'text', text: reply.text })
    }
    const stopReason = 'toolUse' in reply ? 'tool_use' : 'end_turn'
    const message = {
      id: `msg_fake_${request.seq}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
    }
    if (!request.stream) return json(res, message)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const send = (type: string, data: object): void => {
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`)
    }
    send('message_start', { message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } } })
    content.forEach((block, i) => {
      if (block.type === 'text') {
        send('content_block_start', { index: i, content_block: { type: 'text', text: '' } })
        send('content_block_delta', { index: i, delta: { type: 'text_delta', text: block.text } })
      } else {
        send('content_block_start', { index: i, content_block: { ...block, input: {} } })
        send('content_block_delta', { index: i, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } })
      }
      send('content_block_stop', { index: i })
    })
    send('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 10 } })
    send('message_stop', {})
    res.end()
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      const raw = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      try {
        body = raw === '' ? undefined : JSON.parse(raw)
      } catch {
        body = undefined
      }
      if (req.method === 'POST' && path === '/v1/messages' && isMessagesBody(body)) {
        onMessages(path, req, body, res).catch(err => {
          errors.push(err)
          res.destroy()
        })
        return
      }
      other.push(`${req.method ?? '?'} ${path}`)
      if (path === '/v1/messages/count_tokens') return json(res, { input_tokens: Math.max(1, Math.ceil(raw.length / 4)) })
      json(res, {})
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    main: () => requests.filter(r => r.main),
    other,
    errors,
    async waitFor(pred, timeoutMs = 15_000) {
      const past = requests.find(pred)
      if (past != null) return past
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('request', on)
          reject(new Error(`fake API: no matching request within ${timeoutMs} ms`))
        }, timeoutMs)
        const on = (r: ApiRequest): void => {
          if (!pred(r)) return
          clearTimeout(timer)
          events.off('request', on)
          resolve(r)
        }
        events.on('request', on)
      })
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

function isMessagesBody(x: unknown): x is MessagesBody {
  return typeof x === 'object' && x != null && Array.isArray((x as MessagesBody).messages)
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(value))
}

/** Every string in the request's system prompt and messages (not tool definitions), in order. */
export function requestStrings(req: ApiRequest): string[] {
  const out: string[] = []
  const walk = (x: unknown): void => {
    if (typeof x === 'string') out.push(x)
    else if (Array.isArray(x)) x.forEach(walk)
    else if (typeof x === 'object' && x != null) Object.values(x).forEach(walk)
  }
  walk(req.body.system)
  walk(req.body.messages)
  return out
}

/** Whether `needle` appears anywhere in the request's system prompt or messages. */
export function requestContains(req: ApiRequest, needle: string | RegExp): boolean {
  return requestStrings(req).some(s => (typeof needle === 'string' ? s.includes(needle) : needle.test(s)))
}

/** The text of the last tool_result block in the request, or undefined. */
export function lastToolResult(req: ApiRequest): { toolUseId: string; content: string; isError: boolean } | undefined {
  for (const m of [...req.body.messages].reverse()) {
    if (typeof m.content === 'string') continue
    const block = [...m.content].reverse().find(b => b.type === 'tool_result')
    if (block == null) continue
    const c = block.content
    const content = typeof c === 'string' ? c : Array.isArray(c) ? c.map(b => (b as ContentBlock).text ?? '').join('') : ''
    return { toolUseId: String(block.tool_use_id), content, isError: block.is_error === true }
  }
  return undefined
}
