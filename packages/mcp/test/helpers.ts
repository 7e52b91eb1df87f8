/** Real nodes on loopback, each with its MCP server and a real MCP SDK client that records notifications. */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode, type Group, type MeshNode } from '@claudemesh/node'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterEach } from 'vitest'
import { ClaudemeshServer, type MessageMode } from '../src/index.js'

export const FAST = { heartbeatMs: 500, ttlMs: 3_000, graceMs: 1_500 }
export const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s()
})

/** `notes` records every notification the client got; `events` fires `note` on each. */
export interface Session {
  node: MeshNode
  server: ClaudemeshServer
  client: Client
  notes: unknown[]
  all: unknown[]
  events: EventTarget
  nextNote: () => Promise<unknown>
}
export interface SessionOpts {
  mode?: MessageMode
  channels?: boolean
  role?: string
  groups?: Group[]
  summary?: string
}

/** A temp home with the mesh "team" (`mesh`: its relays or bootstrap peers), removed after the test. */
export async function home(mesh: Parameters<typeof createMesh>[2] = {}): Promise<string> {
  const h = await mkdtemp(join(tmpdir(), 'cm-mcp-'))
  await createMesh(h, 'team', mesh)
  stops.push(async () => rm(h, { recursive: true, force: true }))
  return h
}

export async function session(h: string, name: string, opts: SessionOpts = {}): Promise<Session> {
  const node = await createMeshNode({
    home: h,
    mesh: 'team',
    session: randomUUID(),
    name,
    role: opts.role,
    groups: opts.groups ?? [{ name: 'core', role: 'lead' }],
    presence: FAST
  })
  // as `claudemesh mcp` does: the hook methods are served before the registry lists the session
  const made: { server?: ClaudemeshServer } = {}
  await node.start({
    prepare: async n => {
      made.server = await ClaudemeshServer.create(n, { mode: opts.mode, channels: opts.channels })
    }
  })
  const server = made.server as ClaudemeshServer
  const [a, b] = InMemoryTransport.createLinkedPair()
  const client = new Client({ name: 'test', version: '1' })
  const notes: unknown[] = []
  const all: unknown[] = []
  const events = new EventTarget()
  let waiter: ((n: unknown) => void) | undefined
  client.fallbackNotificationHandler = async n => {
    notes.push(n)
    all.push(n)
    waiter?.(n)
    events.dispatchEvent(new Event('note'))
  }
  const nextNote = async (): Promise<unknown> =>
    notes.shift() ??
    new Promise(resolve => {
      waiter = n => {
        notes.shift()
        waiter = undefined
        resolve(n)
      }
    })
  await server.connect(a)
  await client.connect(b)
  stops.push(async () => {
    await client.close()
    await server.close()
    await node.stop()
  })
  return { node, server, client, notes, all, events, nextNote }
}

export interface ToolResult {
  isError?: boolean
  structuredContent?: Record<string, unknown>
  content: unknown[]
}

export async function call(s: Session, name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
  return CallToolResultSchema.parse(await s.client.callTool({ name, arguments: args }, CallToolResultSchema)) as ToolResult
}

export async function meet(...ss: Session[]): Promise<void> {
  await Promise.all(
    ss.map(
      async s =>
        new Promise<void>(resolve => {
          const check = (): void => {
            if (ss.every(o => o === s || s.node.presence.get(o.node.peerId)?.online === true)) resolve()
          }
          s.node.addEventListener('peer:join', check)
          check()
        })
    )
  )
}

export async function arrival(s: Session): Promise<void> {
  await new Promise<void>(resolve => {
    s.node.addEventListener(
      'message:receive',
      () => {
        resolve()
      },
      { once: true }
    )
  })
}

/** Resolve once `pred` holds, checking after each event of `types` on `target` (bounded). */
export async function until(
  target: EventTarget,
  types: string[],
  pred: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  what = 'condition'
): Promise<void> {
  if (await pred()) return
  await new Promise<void>((resolve, reject) => {
    let busy = false
    let again = false
    // checks never overlap, and an event during a check causes one more check after it
    const check = (): void => {
      if (busy) {
        again = true
        return
      }
      busy = true
      again = false
      void Promise.resolve(pred()).then(
        ok => {
          busy = false
          if (ok) done()
          else if (again) check()
        },
        () => {
          busy = false
        }
      )
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out waiting for ${what}`))
    }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      for (const t of types) target.removeEventListener(t, check)
    }
    const done = (): void => {
      cleanup()
      resolve()
    }
    for (const t of types) target.addEventListener(t, check)
  })
}

/** Check `pred` every 25 ms until it holds (bounded): for conditions no event announces. */
export async function poll(pred: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}
