/**
 * The HTTP server of `claudemesh ui` (SPEC.md §19): on 127.0.0.1 only; every request passes
 * `checkRequest` (Host, token, Origin, CSRF); static files from `web/`, the live feed as
 * server-sent events, and four JSON actions that become control calls on the node.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ControlClient, UNSAFE_CHARS } from '@claudemesh/node/client'
import { type Action, ACTIONS } from './actions.js'
import type { UiFeed } from './feed.js'
import { checkRequest, type Gate, newToken, SECURITY_HEADERS } from './security.js'

const STATIC: Record<string, string> = {
  '': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8'
}
const FILES: Record<string, string> = { '': 'index.html', 'app.js': 'app.js', 'app.css': 'app.css' }
/** The largest POST body read (a message is at most 64 KiB, a state value 64 KiB of JSON). */
export const MAX_BODY_BYTES = 256 * 1024
/** Pages connected at once: each holds an event stream open. */
export const MAX_STREAMS = 16
const PING_MS = 15_000

/** `web/` beside the package: found from the bundle (dist/claudemesh.mjs) and from dist/ui/*.js or src/ui/*.ts alike. */
export function webDir(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from, i = 0; i < 4; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'web', 'index.html'))) return join(dir, 'web')
  }
  throw new Error(`the UI's static files (web/index.html) are not installed beside ${from}`)
}

export interface UiServerInit {
  client: ControlClient
  feed: UiFeed
  port?: number
  token?: string
}

export class UiServer {
  readonly token: string
  port = 0
  private readonly files = new Map<string, Buffer>()
  private readonly server: Server
  private readonly streams = new Set<ServerResponse>()
  private ping?: NodeJS.Timeout

  constructor(private readonly init: UiServerInit) {
    this.token = init.token ?? newToken()
    const dir = webDir()
    for (const [path, file] of Object.entries(FILES)) this.files.set(path, readFileSync(join(dir, file)))
    this.server = createServer((req, res) => {
      this.handle(req, res)
    })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/t/${this.token}/`
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.init.port ?? 0, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const addr = this.server.address()
    this.port = typeof addr === 'object' && addr != null ? addr.port : 0
    this.init.feed.subscribe((section, json) => {
      this.broadcast(section, json)
    })
    this.ping = setInterval(() => {
      for (const s of this.streams) s.write(': ping\n\n')
    }, PING_MS)
  }

  async stop(): Promise<void> {
    clearInterval(this.ping)
    for (const s of this.streams) s.end()
    this.server.closeAllConnections()
    await new Promise<void>(resolve => {
      this.server.close(() => {
        resolve()
      })
    })
  }

  private gate(): Gate {
    return { port: this.port, token: this.token }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
    const checked = checkRequest(this.gate(), req.method ?? '', req.url ?? '', req.headers)
    if (!checked.ok) {
      refuse(res, checked.status, checked.reason)
      return
    }
    const rest = checked.rest
    if (rest == null) {
      res.writeHead(308, { location: `/t/${this.token}/` })
      res.end()
      return
    }
    if (req.method === 'POST') {
      const name = rest.startsWith('api/') ? rest.slice(4) : ''
      const action = Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined
      if (action == null) {
        refuse(res, 404, 'no such action')
        return
      }
      void this.act(req, res, action)
      return
    }
    if (rest === 'events') {
      this.stream(req, res)
      return
    }
    const file = this.files.get(rest)
    if (file == null) {
      refuse(res, 404, 'not found')
      return
    }
    res.writeHead(200, { 'content-type': STATIC[rest] ?? 'application/octet-stream', 'content-length': file.length })
    res.end(req.method === 'HEAD' ? undefined : file)
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.streams.size >= MAX_STREAMS) {
      refuse(res, 503, 'too many open pages')
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' })
    res.write('retry: 2000\n\n')
    res.write(event('hello', JSON.stringify({ unsafe: UNSAFE_CHARS })))
    for (const [s, json] of this.init.feed.current()) res.write(event(s, json))
    this.streams.add(res)
    req.on('close', () => {
      this.streams.delete(res)
    })
  }

  private broadcast(section: string, json: string): void {
    const e = event(section, json)
    for (const s of this.streams) s.write(e)
  }

  private async act(req: IncomingMessage, res: ServerResponse, action: Action): Promise<void> {
    let body: unknown
    try {
      body = JSON.parse(await readBody(req))
    } catch (err) {
      return refuse(
        res,
        (err as Error).name === 'RangeError' ? 413 : 400,
        (err as Error).name === 'RangeError' ? 'body too large' : 'the body is not JSON'
      )
    }
    try {
      const result = await action(body, { client: this.init.client, feed: this.init.feed })
      json(res, 200, { ok: true, result })
    } catch (err) {
      const e = err as Error
      json(res, 400, { ok: false, error: { name: e.name, message: e.message.split('\n')[0] } })
    }
  }
}

function event(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function refuse(res: ServerResponse, status: number, reason: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
  res.end(`${reason}\n`)
}

/** The body as text; past MAX_BODY_BYTES a RangeError, once the rest is drained (so the client reads the 413) or, past 8 MiB, cut off. */
async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > 8 * 1024 * 1024) req.destroy()
    if (size <= MAX_BODY_BYTES) chunks.push(chunk)
  }
  if (size > MAX_BODY_BYTES) throw new RangeError('body too large')
  return Buffer.concat(chunks).toString('utf8')
}
