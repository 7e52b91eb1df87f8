/**
 * A hostile member writes shared values of a bad shape through the real signed and sealed
 * path (gossip and the pull protocol): the victim refuses and counts each, keeps serving,
 * restarts, and still converges on the honest values (SPEC.md §11.1, step 6).
 */
import { randomUUID } from 'node:crypto'
import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { GroupCommit, type MeshNode, openStore, SESSION_LAYOUT, paths, sublevel } from '../src/index.js'
import { crdtTopic } from '../src/state/constants.js'
import { clientIdOf, LevelLog, signUpdate, streamOf, updateKey } from '../src/state/index.js'
import { homeWithMesh, rng, startNode, until, untilAllSee } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function mesh(names: string[]): Promise<{ home: string; sessions: string[]; ns: MeshNode[] }> {
  const h = await homeWithMesh()
  cleanups.push(h.cleanup)
  const sessions = names.map(() => randomUUID())
  const ns: MeshNode[] = []
  for (const [i, name] of names.entries()) ns.push(await startNode({ home: h.home, name, session: sessions[i] }))
  nodes.push(...ns)
  await untilAllSee(ns)
  return { home: h.home, sessions, ns }
}

/**
 * What a modified client can send: one Yjs transaction made on a scratch copy of its document
 * (so overwrites point at real entries), under its own client id for `inc`, signed and sealed.
 */
async function forge(h: MeshNode, inc: number, fn: (doc: Y.Doc) => void): Promise<Uint8Array> {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate((h.shared as NonNullable<MeshNode['shared']>).replica.doc))
  doc.clientID = clientIdOf(h.key.privateKey.publicKey.raw, inc)
  let update: Uint8Array | undefined
  doc.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin === 'forge') update = u
  })
  doc.transact(() => {
    fn(doc)
  }, 'forge')
  if (update == null) throw new Error('the forged transaction changed nothing')
  return signUpdate(h.mesh.id, h.key.privateKey, updateKey(h.mesh.contentSecret as Uint8Array, h.mesh.id), inc, 1, update)
}

/** Hand `envelopes` to `victim` over the real pull protocol, from a hostile responder. */
async function pullFrom(victim: MeshNode, hostile: MeshNode, envelopes: Uint8Array[]): Promise<number> {
  const replica = (hostile.shared as NonNullable<MeshNode['shared']>).replica
  replica.missing = async () => envelopes.splice(0, 5000)
  // a home is a tree (SPEC.md §5.1): the two may hang from a third node
  const conn = victim.libp2p.getConnections(hostile.libp2p.peerId)[0] ?? (await victim.libp2p.dial(hostile.libp2p.getMultiaddrs()))
  return (victim.shared as NonNullable<MeshNode['shared']>).sync.pull(conn)
}

async function poll(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const shared = (n: MeshNode): NonNullable<MeshNode['shared']> => n.shared as NonNullable<MeshNode['shared']>

describe('hostile shared values', () => {
  it('regression: a note {content: 42, tags: "nope"} is refused and counted; the victim serves, recalls and restarts', async () => {
    const {
      home,
      sessions,
      ns: [victim, mallory]
    } = (await mesh(['victim', 'mallory'])) as { home: string; sessions: string[]; ns: [MeshNode, MeshNode] }
    const honest = await victim.data.memory.remember('the staging database lives on host db-2', ['infra'])
    const rejects: Array<{ reason: string; author?: string }> = []
    victim.addEventListener('crdt:reject', evt => {
      rejects.push(evt.detail)
    })
    const now = Date.now()
    const bad = await forge(mallory, 7, d => {
      d.getMap('memory').set('00000000deadbeef', {
        content: 42,
        tags: 'nope',
        author: mallory.peerId,
        createdAt: now,
        by: mallory.peerId,
        at: now
      })
    })
    // the update is a gossip hint: published before mallory knows the victim is on the topic, it reaches no one
    const topic = crdtTopic(mallory.mesh.id)
    await poll(
      () => mallory.libp2p.services.pubsub.getSubscribers(topic).some(p => p.toString() === victim.peerId),
      30_000,
      'mallory to see the victim on the crdt topic'
    )
    shared(mallory).sync.publish(bad)
    // settled either way: refused (now), or in the document (before the fix)
    await poll(
      () => rejects.length > 0 || shared(victim).replica.doc.getMap('memory').has('00000000deadbeef'),
      10_000,
      'the victim to take the note one way or the other'
    )
    expect(victim.data.memory.get('00000000deadbeef')).toBeUndefined()
    expect((await victim.data.memory.recall('staging'))[0]?.id).toBe(honest.id)
    await victim.stop()
    nodes.splice(nodes.indexOf(victim), 1)
    const again = await startNode({ home, name: 'victim', session: sessions[0] })
    nodes.push(again)
    expect((await again.data.memory.recall('staging'))[0]?.id).toBe(honest.id)
    expect(again.data.memory.size).toBe(1)
    // refused, counted once and announced with its author
    expect(rejects).toHaveLength(1)
    expect(rejects[0]).toMatchObject({
      author: mallory.peerId,
      reason: expect.stringMatching(/memory value that breaks its schema \(content/)
    })
    again.addEventListener('crdt:reject', evt => {
      rejects.push(evt.detail)
    })
    // the same envelope again by pull after the restart: its sequence is held (refused) in the
    // snapshot's vector, so it is a duplicate, not a second refusal
    await untilAllSee([again, mallory])
    const dups = shared(again).replica.stats.duplicates
    await pullFrom(again, mallory, [bad])
    expect(shared(again).replica.stats.duplicates).toBe(dups + 1)
    expect(again.info().shared).toMatchObject({ rejected: 0, skipped: 0, waiting: 0 })
    expect(again.data.memory.get('00000000deadbeef')).toBeUndefined()
    expect(again.data.memory.size).toBe(1)
  })

  it('bad values an older version stored are skipped and counted at start, never fatal', async () => {
    const {
      home,
      sessions,
      ns: [victim, mallory]
    } = (await mesh(['victim', 'mallory'])) as { home: string; sessions: string[]; ns: [MeshNode, MeshNode] }
    const honest = await victim.data.memory.remember('the staging database lives on host db-2', ['infra'])
    await victim.data.state.set('ok', 1)
    const m = mallory.peerId
    const forged = [
      await forge(mallory, 1, d => {
        d.getMap('memory').set('00000000deadbeef', { content: 42, tags: 'nope', author: m, createdAt: 1, by: m, at: 1 })
      }),
      await forge(mallory, 2, d => {
        d.getMap('state').set('proto', JSON.parse(`{"__proto__": {"v": "inherited"}, "by": "${m}", "at": 1}`))
      }),
      await forge(mallory, 3, d => {
        d.getMap('state').set('nov', { by: m, at: 1 })
      })
    ]
    await victim.stop()
    nodes.splice(nodes.indexOf(victim), 1)
    // what an older version, which checked only `by`, accepted and logged
    const store = await openStore(paths.data(home, 'test', sessions[0] as string), SESSION_LAYOUT)
    const log = new LevelLog(sublevel(store, 'crdt'), new GroupCommit(store), paths.snapshots(home, 'test', sessions[0] as string))
    await log.open()
    for (const [i, env] of forged.entries()) await log.append(streamOf(mallory.key.privateKey.publicKey.raw, i + 1), 1, env)
    await log.append('00.1', 1, new Uint8Array([1, 2, 3])) // and a record that no longer decodes
    await store.close()
    const again = await startNode({ home, name: 'victim', session: sessions[0] })
    nodes.push(again)
    expect((await again.data.memory.recall('staging'))[0]?.id).toBe(honest.id)
    expect((await again.data.memory.recall('')).map(n => n.id)).toEqual([honest.id])
    expect(again.data.state.list().map(e => e.key)).toEqual(['ok'])
    expect(again.data.state.get('proto')).toBeUndefined()
    expect(again.info()).toMatchObject({ memories: 1, stateKeys: 1, shared: { skipped: 4, rejected: 0 } })
    // an honest overwrite of a bad key still works, and the key counts again
    await again.data.state.set('nov', 'fixed')
    expect(again.data.state.get('nov')?.value).toBe('fixed')
  })

  it('fuzz: random bad shapes from a hostile member are all refused; honest values converge; the victim restarts', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000)
    const r = rng(seed)
    const {
      home,
      sessions,
      ns: [victim, mallory, carol]
    } = (await mesh(['victim', 'mallory', 'carol'])) as { home: string; sessions: string[]; ns: [MeshNode, MeshNode, MeshNode] }
    await carol.data.state.set('build/status', { ok: true })
    const carolNote = await carol.data.memory.remember('deploys run from the release branch', ['deploy'])
    await until(
      [victim, mallory],
      ['state:change', 'memory:change'],
      () => [victim, mallory].every(n => n.data.state.get('build/status') != null && n.data.memory.get(carolNote.id) != null),
      30_000,
      "carol's values everywhere"
    )
    const envelopes: Uint8Array[] = []
    let bad = 0
    let good = 0
    for (let i = 0; i < 160; i++) {
      const inc = 1000 + i
      if (r() < 0.15) {
        // a well-formed value from the same member must still go through
        good++
        envelopes.push(
          await forge(mallory, inc, d => {
            d.getMap('state').set(`ok/${i}`, { v: { i }, by: mallory.peerId, at: i })
          })
        )
        continue
      }
      const c = badCase(r, mallory.peerId, i, carolNote.id)
      bad++
      envelopes.push(
        await forge(mallory, inc, d => {
          d.getMap(c.root).set(c.key, c.value)
        })
      )
      if (r() < 0.2) await carol.data.state.set(`carol/${i}`, i) // honest traffic meanwhile
    }
    const t0 = performance.now()
    const info = await pullFrom(victim, mallory, envelopes)
    expect(info).toBe(bad + good)
    expect(victim.info().shared, `SEED=${seed}`).toMatchObject({ rejected: bad, waiting: 0, skipped: 0 })
    process.stderr.write(
      `fuzz SEED=${seed}: ${bad} bad and ${good} good updates through the pull protocol in ${(performance.now() - t0).toFixed(0)} ms\n`
    )
    // honest values: carol's and mallory's good ones, the same on the victim as on carol
    // (a home is a tree, SPEC.md §5.1: carol may hang from mallory rather than from the victim)
    const toVictim = await carol.libp2p.dial(victim.libp2p.getMultiaddrs())
    await shared(carol).sync.pull(toVictim)
    await until(carol, ['state:change'], () => carol.data.state.list('ok/').length === good, 10_000, "mallory's good values at carol")
    await until(
      victim,
      ['state:change'],
      () => JSON.stringify(victim.data.state.list()) === JSON.stringify(carol.data.state.list()),
      10_000,
      'the victim to converge with carol'
    )
    expect(victim.data.memory.get(carolNote.id)?.content).toBe(carolNote.content)
    expect((await victim.data.memory.recall('release branch'))[0]?.id).toBe(carolNote.id)
    const before = JSON.stringify(victim.data.state.list())
    await victim.stop()
    nodes.splice(nodes.indexOf(victim), 1)
    const again = await startNode({ home, name: 'victim', session: sessions[0] })
    nodes.push(again)
    expect(JSON.stringify(again.data.state.list())).toBe(before)
    expect((await again.data.memory.recall('release branch'))[0]?.id).toBe(carolNote.id)
    expect(again.info().shared.skipped).toBe(0)
  }, 60_000)
})

/** A value that breaks the schema of the root it lands on, by construction (never by our validator). */
function badCase(r: () => number, by: string, i: number, honestNote: string): { root: 'state' | 'memory'; key: string; value: unknown } {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T
  let deep: unknown = 'x'
  for (let d = 0; d < 18 + Math.floor(r() * 20); d++) deep = { d: deep }
  const proto = (o: Record<string, unknown>): unknown => JSON.parse(JSON.stringify(o).replace('"__p"', '"__proto__"'))
  const note = (): Record<string, unknown> => ({ content: `note ${i}`, tags: ['t'], author: by, createdAt: 1, by, at: 1 })
  const entry = (): Record<string, unknown> => ({ v: i, by, at: 1 })
  const badFields: Record<string, unknown[]> = {
    content: [42, '', 'x'.repeat(17_000), null, ['a'], {}, Number.NaN, undefined, deep],
    tags: ['nope', 42, null, [42], [''], ['x'.repeat(65)], Array.from({ length: 17 }, (_, k) => `t${k}`), [null], { 0: 'a' }],
    author: [42, '', 'x'.repeat(200), null],
    createdAt: ['1', -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, null, 2 ** 60],
    at: ['1', -1, 1.5, Number.NaN, null],
    forgotten: ['yes', 1, null],
    v: [undefined, Number.NaN, Number.NEGATIVE_INFINITY, new Uint8Array(3), 5n, deep, 'x'.repeat(70_000), { k: undefined }, [1, Number.NaN]]
  }
  const root = r() < 0.5 ? 'memory' : 'state'
  const okKey = root === 'memory' ? (r() < 0.3 ? honestNote : i.toString(16).padStart(16, '0')) : pick(['build/status', `s/${i}`])
  const base = root === 'memory' ? note() : entry()
  const fields = root === 'memory' ? ['content', 'tags', 'author', 'createdAt', 'at', 'forgotten'] : ['v', 'at']
  switch (Math.floor(r() * 6)) {
    case 0: {
      const f = pick(fields)
      return { root, key: okKey, value: { ...base, [f]: pick(badFields[f] as unknown[]) } }
    }
    case 1: {
      const f = pick(root === 'memory' ? ['content', 'tags', 'author', 'createdAt', 'at'] : ['v', 'at'])
      const v = { ...base }
      delete v[f]
      return { root, key: okKey, value: v }
    }
    case 2:
      return { root, key: okKey, value: { ...base, evil: pick([1, 'x', { a: 1 }]) } }
    case 3:
      return {
        root,
        key: okKey,
        value: proto({ ...base, __p: root === 'memory' ? { content: 'inherited', tags: [] } : { v: 'inherited' } })
      }
    case 4:
      return root === 'memory'
        ? { root, key: pick(['not-hex', 'A'.repeat(16), '../../etc/passwd', 'x'.repeat(200), '']), value: base }
        : { root, key: '', value: base }
    default:
      return { root, key: okKey, value: pick([42, 'str', null, [base], true]) }
  }
}
