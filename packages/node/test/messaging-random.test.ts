/**
 * Seeded randomized delivery: 5 nodes, random DMs and group messages, random restarts.
 * Every accepted DM must reach its recipient's inbox, and be handed out by `check` (what the
 * model is shown) exactly once per recipient, across restarts.
 * SEEDS=20 runs more seeds; SEED=n replays one.
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { homeWithMesh, rng, startNode, until, untilAllSee } from './helpers.js'

const seeds =
  process.env.SEED != null
    ? [Number(process.env.SEED)]
    : Array.from({ length: Number(process.env.SEEDS ?? 3) }, (_, i) => 1000 + i * 7919 + (Date.now() % 997))

async function run(seed: number): Promise<void> {
  const r = rng(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T
  const { home, cleanup } = await homeWithMesh()
  const names = ['n0', 'n1', 'n2', 'n3', 'n4']
  const sessions = names.map(() => randomUUID())
  const live: Array<MeshNode | undefined> = []
  const shown = new Map<string, number>() // `${recipientName}:${id}` → times shown
  const expected = new Set<string>()
  const start = async (i: number): Promise<MeshNode> => {
    const n = await startNode({ home, name: names[i], session: sessions[i], groups: i % 2 === 0 ? [{ name: 'even' }] : [] })
    live[i] = n
    return n
  }
  const check = async (i: number): Promise<void> => {
    for (const m of (await live[i]?.mail.check({ limit: 500 }))?.messages ?? []) {
      const k = `${names[i]}:${m.id}`
      shown.set(k, (shown.get(k) ?? 0) + 1)
    }
  }
  try {
    for (let i = 0; i < names.length; i++) await start(i)
    await untilAllSee(live.filter((n): n is MeshNode => n != null))
    for (let step = 0; step < 40; step++) {
      const up = live.map((n, i) => (n != null ? i : -1)).filter(i => i >= 0)
      const x = r()
      if (x < 0.1) {
        await check(pick(up))
      } else if (x < 0.25 && up.length > 2) {
        const i = pick(up)
        await live[i]?.stop()
        live[i] = undefined
      } else if (x < 0.4 && up.length < names.length) {
        const down = names.map((_, i) => i).filter(i => live[i] == null)
        await start(pick(down))
      } else {
        const from = live[pick(up)]
        if (from == null) continue
        const to = pick(names.filter(n => n !== from.self().name))
        // a peer the sender has never seen cannot be addressed: that is a refusal, not a loss
        const results = await from.mail.send(to, `step ${step} seed ${seed}`).catch(() => [])
        for (const res of results) expected.add(`${to}:${res.id}`)
      }
    }
    for (let i = 0; i < names.length; i++) if (live[i] == null) await start(i)
    const nodes = live.filter((n): n is MeshNode => n != null)
    await untilAllSee(nodes, 20_000)
    await until(
      nodes,
      ['message:status', 'message:receive'],
      () => nodes.every(n => n.mail.outbox.size === 0),
      30_000,
      'every outbox to drain'
    )
    for (let i = 0; i < names.length; i++) await check(i)
    for (const k of expected) {
      const [name, id] = k.split(':') as [string, string]
      const node = nodes[names.indexOf(name)]
      expect(await node?.mail.inbox.has(id), `${k} in the inbox`).toBe(true)
      expect(shown.get(k) ?? 0, `${k} shown`).toBe(1)
    }
    for (const [k, n] of shown) expect(n, `${k} shown more than once`).toBe(1)
  } finally {
    await Promise.all(live.map(async n => n?.stop()))
    await cleanup()
  }
}

describe('randomized delivery with restarts', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: every accepted DM arrives exactly once`, async () => {
      try {
        await run(seed)
      } catch (err) {
        throw new Error(`SEED=${seed} failed: ${(err as Error).message}`)
      }
    }, 120_000)
  }
})
