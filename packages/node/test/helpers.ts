import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode, type InboxMessage, type Mesh, type MeshNode, type MeshNodeInit } from '../src/index.js'

export const FAST = { heartbeatMs: 500, ttlMs: 3_000, graceMs: 1_500 }

export async function tempHome(): Promise<{ home: string; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'cm-'))
  return { home, cleanup: async () => rm(home, { recursive: true, force: true }) }
}

export async function homeWithMesh(name = 'test'): Promise<{ home: string; mesh: Mesh; cleanup: () => Promise<void> }> {
  const t = await tempHome()
  const mesh = await createMesh(t.home, name)
  return { ...t, mesh }
}

export async function startNode(init: Partial<MeshNodeInit> & { home: string }): Promise<MeshNode> {
  const node = await createMeshNode({ mesh: 'test', session: randomUUID(), presence: FAST, ...init })
  await node.start()
  return node
}

/** A session of `home` that remembered a note and set `deploy` = `frozen`, then stopped cleanly (its snapshots written); the note. */
export async function stoppedWithNoteAndState(home: string, session: string): Promise<{ id: string }> {
  const node = await startNode({ home, name: 'a', session })
  const note = await node.data.memory.remember('the staging database lives on host db-2', ['infra'])
  await node.data.state.set('deploy', 'frozen')
  await node.stop()
  return note
}

/** Resolve when `at`'s gossipsub lists `peer` as subscribed to `topic`. */
export async function untilSubscribed(at: MeshNode, peer: MeshNode, topic: string, what: string): Promise<void> {
  const pubsub = at.libp2p.services.pubsub
  await until(pubsub, ['subscription-change'], () => pubsub.getSubscribers(topic).some(p => p.equals(peer.libp2p.peerId)), 10_000, what)
}

/** Resolve when `pred` holds, checking now and after each event of `types` on any of `targets`. */
export async function until(
  targets: EventTarget | EventTarget[],
  types: string[],
  pred: () => boolean,
  timeoutMs = 10_000,
  what = 'condition'
): Promise<void> {
  if (pred()) return
  const all = Array.isArray(targets) ? targets : [targets]
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (pred()) done()
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out waiting for ${what}`))
    }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      for (const target of all) for (const t of types) target.removeEventListener(t, check)
    }
    const done = (): void => {
      cleanup()
      resolve()
    }
    for (const target of all) for (const t of types) target.addEventListener(t, check)
  })
}

/**
 * Resolve when `pred` holds, looking every 50 ms: only for facts no event announces (counters
 * of refused or synced messages, a mailbox's intake); anything with an event uses `until`.
 */
export async function pollUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Every node lists every other node as online. */
export function allSee(nodes: MeshNode[]): boolean {
  return nodes.every(n => nodes.every(m => m === n || n.presence.get(m.peerId)?.online === true))
}

export async function untilAllSee(nodes: MeshNode[], timeoutMs = 10_000): Promise<void> {
  await until(nodes, ['peer:join', 'peer:update'], () => allSee(nodes), timeoutMs, 'every node to see every other')
}

/** A seeded generator (mulberry32), so any randomized failure replays from its seed. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Resolve with the next message `node` receives that matches. */
export async function received(node: MeshNode, pred: (m: InboxMessage) => boolean = () => true): Promise<InboxMessage> {
  return new Promise(resolve => {
    const on = (e: CustomEvent<InboxMessage>): void => {
      if (!pred(e.detail)) return
      node.removeEventListener('message:receive', on)
      resolve(e.detail)
    }
    node.addEventListener('message:receive', on)
  })
}

/** What a test file started and must stop and remove after each test. */
export interface World {
  nodes: MeshNode[]
  cleanups: Array<() => Promise<void>>
}

/**
 * Nodes named `names` in one fresh home with mesh "test", all seeing each other online;
 * `init(name)` adds to a node's init. The nodes and the home go into `world`.
 */
export async function startMesh(
  world: World,
  names: string[],
  init: (name: string) => Partial<MeshNodeInit> = () => ({})
): Promise<{ home: string; nodes: MeshNode[] }> {
  const h = await homeWithMesh()
  world.cleanups.push(h.cleanup)
  const ns: MeshNode[] = []
  for (const name of names) {
    const n = await startNode({ home: h.home, name, ...init(name) })
    world.nodes.push(n)
    ns.push(n)
  }
  await untilAllSee(ns)
  return { home: h.home, nodes: ns }
}

/** A flooder child process (flooder.ts, group-flooder.ts), driven over IPC. */
export interface Flooder<D> {
  /** its PeerId, once its node runs */
  ready: Promise<string>
  /** what it reports when its flood is over */
  done: Promise<D>
  go: () => void
  stop: () => Promise<void>
}

/** Start the flooder `script` (a file beside this one) with `args`; `doneOf` reads its `done` message. */
export function forkFlooder<D>(script: string, args: Record<string, unknown>, doneOf: (m: Record<string, unknown>) => D): Flooder<D> {
  const child = fork(join(import.meta.dirname, script), [JSON.stringify({ session: randomUUID(), ...args })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = new Promise<void>(resolve => {
    child.once('exit', () => {
      resolve()
    })
  })
  const message = async (t: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const on = (m: { t: string }): void => {
        if (m.t !== t) return
        child.off('message', on)
        resolve(m)
      }
      child.on('message', on)
      void exited.then(() => {
        reject(new Error(`the flooder exited before "${t}"`))
      })
    })
  const ready = message('ready').then(m => m.peerId as string)
  const done = message('done').then(doneOf)
  done.catch(() => {})
  return {
    ready,
    done,
    go: () => {
      child.send({ t: 'go' })
    },
    stop: async () => {
      if (child.exitCode == null && child.connected) child.send({ t: 'stop' })
      const killer = setTimeout(() => {
        child.kill('SIGKILL')
      }, 10_000)
      await exited
      clearTimeout(killer)
    }
  }
}
