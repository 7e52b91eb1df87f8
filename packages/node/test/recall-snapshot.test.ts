/**
 * The recall index snapshot (SPEC.md §11.3, §11.6, issue 12 item 3): an index saved and loaded
 * ranks exactly as the one saved; a start loads it and re-reads only the notes changed since
 * (written, rewritten, forgotten, deleted); a snapshot that is corrupt, of another version or
 * inconsistent is ignored and the index rebuilt from the document, never fatal.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { SharedMemory } from '../src/memory/index.js'
import { paths, snapshotsBeside } from '../src/home.js'
import { decodeIndex, encodeIndex, encodeParts, fileIndexStore, INDEX_FILE, type IndexStore } from '../src/memory/index-snapshot.js'
import { parseQuery, slicedSearch } from '../src/memory/recall.js'
import { TextIndex } from '../src/memory/text-index.js'
import { MemoryLog, Replica } from '../src/state/index.js'
import { openStore, sublevel } from '../src/store/index.js'
import { homeWithMesh, rng, startNode } from './helpers.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)
const WORDS =
  'alpha beta gamma delta epsilon zeta theta kappa lambda omicron sigma omega deploy staging database cache server client'.split(' ')
const QUERIES = ['alpha', 'deploy staging', 'databas', 'omega sigma lambd', 'kappa thet', 'servers', 'cachr client', 'gamma delta epsilon']

const canon = (hs: Array<{ id: string; score: number }>): string[] => hs.map(h => `${h.score.toFixed(9)} ${h.id}`).sort()

/** An index changed note by note (adds, rewrites, removals), and the notes left in it. */
function churned(seed: number): { ix: TextIndex; live: Map<string, { content: string; tags: string[]; author: string }> } {
  const r = rng(seed)
  const text = (): string =>
    Array.from({ length: 3 + Math.floor(r() * 12) }, () => WORDS[Math.floor(r() * WORDS.length)] as string).join(' ')
  const live = new Map<string, { content: string; tags: string[]; author: string }>()
  const ix = new TextIndex()
  for (let op = 0; op < 3000; op++) {
    const id = (0x1000 + Math.floor(r() * 500)).toString(16).padStart(16, '0')
    if (r() < 0.3) {
      ix.remove(id)
      live.delete(id)
    } else {
      const note = {
        content: text(),
        tags: r() < 0.3 ? [WORDS[Math.floor(r() * WORDS.length)] as string] : [],
        author: `peer${Math.floor(r() * 3)}`
      }
      ix.add(id, { content: note.content, tags: note.tags.join(' ') }, { author: note.author, tags: note.tags, source: [7, op] })
      live.set(id, note)
    }
  }
  return { ix, live }
}

async function sameRanking(a: TextIndex, b: TextIndex): Promise<void> {
  expect(a.size).toBe(b.size)
  for (const q of QUERIES) {
    const x = await slicedSearch(a, parseQuery(q), 1000)
    expect(x.length, q).toBeGreaterThan(0)
    expect(canon(x), q).toEqual(canon(await slicedSearch(b, parseQuery(q), 1000)))
  }
  for (const [author, tags] of [
    ['peer1', []],
    [undefined, ['deploy']],
    ['peer2', ['alpha']]
  ] as const) {
    const ka = a.matcher(author, tags)
    const kb = b.matcher(author, tags)
    const q = parseQuery('alpha beta deploy')
    expect(ka == null ? [] : canon(await slicedSearch(a, q, 1000, ka))).toEqual(kb == null ? [] : canon(await slicedSearch(b, q, 1000, kb)))
  }
}

class Store implements IndexStore {
  bytes?: Uint8Array
  saves = 0
  async load(): Promise<Uint8Array | undefined> {
    return this.bytes
  }
  async save(b: Uint8Array): Promise<void> {
    this.bytes = b
    this.saves++
  }
}

/** A replica over `log` (a new incarnation each time, as a restarted node) with its memory on `store`. */
async function start(log: MemoryLog, store: IndexStore | undefined, inc: number): Promise<SharedMemory> {
  const key = await generateKeyPair('Ed25519')
  const replica = new Replica(MESH, key, SEAL, inc, log, peerIdFromPrivateKey(key).toString())
  await replica.load()
  const memory = new SharedMemory(replica, () => {}, store != null ? { indexStore: store } : {})
  await memory.ready
  return memory
}

async function sameRecall(a: SharedMemory, b: SharedMemory): Promise<void> {
  for (const q of QUERIES)
    expect((await a.recall(q, { limit: 100 })).map(n => `${n.score} ${n.id}`).sort(), q).toEqual(
      (await b.recall(q, { limit: 100 })).map(n => `${n.score} ${n.id}`).sort()
    )
}

describe('recall index snapshot', () => {
  it('an index saved and loaded ranks and filters exactly as the one saved, and keeps changing like it', async () => {
    const { ix, live } = churned(3)
    const loaded = decodeIndex(encodeIndex(ix)).index
    await sameRanking(loaded, ix)
    expect(loaded.capacity).toBe(live.size) // dead documents are left out
    expect(loaded.sourceOf([...live.keys()][0] as string)?.[0]).toBe(7)
    // the loaded index takes further changes as the original does
    for (const target of [ix, loaded]) {
      target.remove([...live.keys()][1] as string)
      target.add('00000000000000ff', { content: 'alpha deploy staging omega', tags: 'alpha' }, { author: 'peer9', tags: ['alpha'] })
    }
    await sameRanking(loaded, ix)
    // removals of loaded notes: the first few find their postings list by list, later ones through entries made for every loaded note
    const ids = [...live.keys()].slice(2)
    for (const [from, to] of [
      [0, 3],
      [3, 40],
      [40, 41]
    ] as const) {
      for (const target of [ix, loaded]) for (const id of ids.slice(from, to)) target.remove(id)
      await sameRanking(loaded, ix)
    }
    const again = decodeIndex(encodeIndex(loaded)).index
    await sameRanking(again, ix)
  })

  it('refuses a snapshot that is garbage, truncated, of another version or inconsistent', async () => {
    const { ix } = churned(4)
    const good = encodeIndex(ix)
    const r = rng(5)
    const refused = (b: Uint8Array): void => {
      expect(() => decodeIndex(b)).toThrow()
    }
    refused(new Uint8Array(0))
    refused(Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256)))
    refused(good.subarray(0, good.byteLength >> 1))
    const parts = ix.toParts()
    // what version 1 wrote (one CBOR map): refused, the index is rebuilt once
    const b = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
    refused(
      encode({
        v: 1,
        le: true,
        ids: parts.ids.join(''),
        terms: parts.terms.join('\n'),
        authors: parts.authors,
        tags: parts.tags,
        source: b(parts.source),
        authorOf: b(parts.authorOf),
        tagCount: parts.tagCount,
        tagPool: b(parts.tagPool),
        lens0: b(parts.lens[0] as Uint16Array),
        lens1: b(parts.lens[1] as Uint16Array),
        listKey: b(parts.listKey),
        listLen: b(parts.listLen),
        docs: b(parts.docs),
        tfs: parts.tfs
      })
    )
    const spoilt = (over: Partial<typeof parts>): Uint8Array => encodeParts({ ...parts, ...over })
    expect(decodeIndex(spoilt({})).index.size).toBe(ix.size) // the helper writes what encodeIndex writes
    const v3 = good.slice()
    v3[4] = 3
    refused(v3) // another version
    refused(good.slice(0, good.byteLength - 8)) // an array cut short
    refused(Buffer.concat([good, new Uint8Array(8)])) // bytes after the arrays
    refused(spoilt({ ids: [`x${(parts.ids[0] as string).slice(1)}`, ...parts.ids.slice(1)] }))
    refused(spoilt({ ids: [parts.ids[1] as string, ...parts.ids.slice(1)] })) // a note twice
    refused(spoilt({ ids: parts.ids.slice(1) })) // per-note arrays longer than the notes
    const docs = parts.docs.slice()
    docs[docs.length - 1] = parts.ids.length // a posting of no note
    refused(spoilt({ docs }))
    const order = parts.docs.slice()
    if ((parts.listLen[0] as number) > 1) {
      order[1] = order[0] as number // a list out of order
      refused(spoilt({ docs: order }))
    }
    const lens = (parts.lens[0] as Uint16Array).slice()
    lens[0] = (lens[0] as number) + 1 // a field length its postings contradict
    refused(spoilt({ lens: [lens, parts.lens[1] as Uint16Array] }))
    const tagPool = parts.tagPool.slice()
    if (tagPool.length > 0) tagPool[0] = parts.tags.length
    refused(spoilt({ tagPool }))
    const listKey = parts.listKey.slice()
    listKey[0] = parts.terms.length << 1 // a list of no term
    refused(spoilt({ listKey }))
    // flipped bytes anywhere: refused or an index that still answers, never a crash later
    for (let i = 0; i < 200; i++) {
      const b = good.slice()
      const at = Math.floor(r() * b.length)
      b[at] = (b[at] as number) ^ (1 << Math.floor(r() * 8))
      let loaded: TextIndex | undefined
      try {
        loaded = decodeIndex(b).index
      } catch {}
      if (loaded != null) for (const q of QUERIES) await slicedSearch(loaded, parseQuery(q), 10)
    }
  })

  it('a start loads the snapshot and re-reads only the notes changed since; the result ranks as a fresh build', async () => {
    const log = new MemoryLog()
    const store = new Store()
    const first = await start(log, store, 1)
    expect(first.indexStart).toMatchObject({ from: 'build', reread: 0 })
    const r = rng(9)
    const text = (): string =>
      Array.from({ length: 3 + Math.floor(r() * 10) }, () => WORDS[Math.floor(r() * WORDS.length)] as string).join(' ')
    const ids: string[] = []
    // fewer than recall's limit of 100: every hit is compared, none left out by a tie
    for (let i = 0; i < 90; i++) ids.push((await first.remember(text(), r() < 0.3 ? ['deploy'] : [])).id)
    await first.persist()
    expect(store.saves).toBe(1)

    const second = await start(log, store, 2)
    expect(second.indexStart).toMatchObject({ from: 'snapshot', sameDoc: true, reread: 0 })
    expect(second.size).toBe(90)
    await sameRecall(second, await start(log, undefined, 3))
    await second.persist()
    expect(store.saves).toBe(1) // nothing changed since it was loaded: nothing written

    // changes the snapshot does not have: new notes, a forgotten one, a rewritten one, one deleted outright
    for (let i = 0; i < 5; i++) await second.remember(`omega ${text()}`)
    await second.forget(ids[0] as string)
    const replica = (second as unknown as { replica: Replica }).replica
    const map = replica.doc.getMap<Record<string, unknown>>('memory')
    await replica.change(() => {
      map.set(ids[1] as string, { ...map.get(ids[1] as string), content: 'rewritten alpha omega', at: 1 })
    })
    await replica.change(() => {
      map.delete(ids[2] as string)
    })
    const third = await start(log, store, 4)
    expect(third.indexStart).toMatchObject({ from: 'snapshot', sameDoc: false, reread: 8 })
    expect(third.size).toBe(90 + 5 - 2)
    expect(third.get(ids[0] as string)?.forgotten).toBe(true)
    expect((await third.recall('rewritten'))[0]?.id).toBe(ids[1])
    await sameRecall(third, await start(log, undefined, 5))
    // the changes were re-read: saved once, even when asked twice at once
    await Promise.all([third.persist(), third.persist()])
    expect(store.saves).toBe(2)
    const sixth = await start(log, store, 6)
    expect(sixth.indexStart).toMatchObject({ from: 'snapshot', sameDoc: true, reread: 0 })

    // a change outside the notes: the index is the same, but a stop saves it with the new document, so the next start compares no note
    const r6 = (sixth as unknown as { replica: Replica }).replica
    await r6.change(doc => {
      doc.getMap('state').set('deploy', { value: 'frozen' })
    })
    await sixth.persist()
    expect(store.saves).toBe(3)
    await sixth.persist()
    expect(store.saves).toBe(3)
    expect((await start(log, store, 7)).indexStart).toMatchObject({ from: 'snapshot', sameDoc: true, reread: 0 })
  })

  it('a corrupt, foreign or unreadable snapshot is ignored: the index is rebuilt from the document and saved again', async () => {
    const log = new MemoryLog()
    const first = await start(log, undefined, 1)
    for (let i = 0; i < 50; i++) await first.remember(`note ${i} about ${WORDS[i % WORDS.length] as string} staging`)
    const fresh = await start(log, undefined, 2)
    const other = churned(6).ix // a valid snapshot of other notes: their sources are not these notes' items
    const cases: Array<[string, IndexStore]> = [
      ['garbage', { load: async () => Uint8Array.from({ length: 999 }, (_, i) => i * 7), save: async () => {} }],
      ['truncated', { load: async () => encodeIndex(other).subarray(0, 100), save: async () => {} }],
      [
        'unreadable',
        {
          load: async () => {
            throw new Error('disk on fire')
          },
          save: async () => {}
        }
      ]
    ]
    for (const [what, s] of cases) {
      const m = await start(log, s, 3)
      expect(m.indexStart?.from, what).toBe('build')
      expect(m.indexStart?.ignored, what).toBeTruthy()
      await sameRecall(m, fresh)
    }
    const foreign = new Store()
    foreign.bytes = encodeIndex(other)
    const m = await start(log, foreign, 4)
    expect(m.indexStart).toMatchObject({ from: 'snapshot' }) // it loads, then every note is re-read
    expect(m.size).toBe(50)
    await sameRecall(m, fresh)
    const broken = new Store()
    broken.bytes = new Uint8Array([1, 2, 3])
    const rebuilt = await start(log, broken, 5)
    expect(rebuilt.indexStart?.from).toBe('build')
    await rebuilt.persist() // saving over a broken one works, and the next start loads it
    expect((await start(log, broken, 6)).indexStart).toMatchObject({ from: 'snapshot', reread: 0 })
  })

  it('a file beside the store, replaced whole; an older version’s pieces in LevelDB load, and the next save deletes them', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cm-recall-snap-'))
    const dir = join(root, 'db')
    try {
      const db = await openStore(dir, { version: 1, migrations: { 0: async () => {} } })
      const crdt = sublevel(db, 'crdt')
      const snaps = snapshotsBeside(dir)
      const s = fileIndexStore(snaps, crdt)
      expect(await s.load()).toBeUndefined()
      // an older version's pieces (r!index!<n>, at most 1 MiB, in key order)
      const big = Uint8Array.from({ length: 2 * 1024 * 1024 + 5 }, (_, i) => i % 251)
      for (let at = 0, n = 0; at < big.byteLength; at += 1024 * 1024, n++)
        await crdt.put(`r!index!${String(n).padStart(6, '0')}`, big.subarray(at, at + 1024 * 1024))
      expect(Buffer.from((await s.load()) as Uint8Array).equals(Buffer.from(big))).toBe(true)
      await s.save(big)
      expect(await crdt.keys({ gte: 'r!', lt: 'r"' }).all()).toEqual([])
      expect(await readdir(snaps)).toEqual([INDEX_FILE])
      expect((await stat(snaps)).mode & 0o777).toBe(0o700)
      expect((await stat(join(snaps, INDEX_FILE))).mode & 0o777).toBe(0o600)
      const back = (await s.load()) as Uint8Array
      expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true)
      expect(back.byteOffset % 8).toBe(0) // its arrays are views of it
      await s.save(new Uint8Array([9, 8, 7]))
      expect([...((await s.load()) as Uint8Array)]).toEqual([9, 8, 7])
      expect(await readdir(snaps)).toEqual([INDEX_FILE])
      await db.close()
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })

  it('a node saves the index at a clean stop (leaving no LevelDB log to replay) and its restart loads it; a broken one is rebuilt', async () => {
    const h = await homeWithMesh()
    const session = randomUUID()
    try {
      let node = await startNode({ home: h.home, name: 'a', session })
      await node.data.memory.ready
      expect(node.data.memory.indexStart?.from).toBe('build')
      const note = await node.data.memory.remember('the staging database lives on host db-2', ['infra'])
      await node.stop()
      // the stop wrote LevelDB's memtable out: the next start replays no log (SPEC.md §11.3)
      const dir = join(h.home, 'data', 'test', session)
      const logs = (await readdir(dir)).filter(f => f.endsWith('.log'))
      expect(logs.length).toBeGreaterThan(0)
      for (const f of logs) expect((await stat(join(dir, f))).size, f).toBe(0)
      node = await startNode({ home: h.home, name: 'a', session })
      await node.data.memory.ready
      expect(node.data.memory.indexStart).toMatchObject({ from: 'snapshot', reread: 0 })
      expect((await node.data.memory.recall('staging databse'))[0]?.id).toBe(note.id)
      await node.stop()
      // the snapshot file is beside the store, not in it; overwritten with garbage while the node is down
      const file = join(paths.snapshots(h.home, 'test', session), INDEX_FILE)
      expect(decodeIndex(new Uint8Array(await readFile(file))).index.size).toBe(1)
      await writeFile(file, new Uint8Array([0xff, 1, 2, 3]))
      node = await startNode({ home: h.home, name: 'a', session })
      await node.data.memory.ready
      expect(node.data.memory.indexStart).toMatchObject({ from: 'build', reread: 1 })
      expect((await node.data.memory.recall('staging'))[0]?.id).toBe(note.id)
      await node.stop()
    } finally {
      await h.cleanup()
    }
  })
})
