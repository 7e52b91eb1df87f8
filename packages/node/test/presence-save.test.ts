import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { type MeshNode, signRecord } from '../src/index.js'
import { presenceKey } from '../src/identity/secrets.js'
import { SAVE_DELAY_MS } from '../src/presence/constants.js'
import { sealBody } from '../src/presence/record.js'
import { openStore, sublevel } from '../src/store/index.js'
import { SESSION_LAYOUT } from '../src/session-store.js'
import { paths } from '../src/home.js'
import { homeWithMesh, startNode } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

/** A fresh peer's signed, sealed record for `node`'s mesh (seq picks the version). */
async function peerRecord(
  node: MeshNode,
  seq: number,
  key?: Ed25519PrivateKey
): Promise<{ bytes: Uint8Array; id: string; key: Ed25519PrivateKey }> {
  const k = key ?? (await generateKeyPair('Ed25519'))
  const secret = node.mesh.contentSecret
  if (secret == null) throw new Error('test mesh has no content secret')
  const body = sealBody(presenceKey(secret, node.mesh.id), k.publicKey.raw, {
    name: `p${seq}`,
    role: '',
    groups: [],
    status: 'idle',
    summary: '',
    cwd: '/',
    host: 'h'
  })
  const bytes = await signRecord(node.mesh.id, k, {
    v: 1,
    peer: k.publicKey.raw,
    inc: 1,
    seq,
    at: Date.now(),
    addrs: [],
    gone: false,
    body
  })
  return { bytes, id: peerIdFromPublicKey(k.publicKey).toString(), key: k }
}

describe('presence ingest and persistence (SPEC.md §6.3)', () => {
  it('an exact copy of a held record is stale; the digest index follows the table to newer versions', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await startNode({ home, name: 'a', registry: false })
    nodes.push(a)
    const first = await peerRecord(a, 1)
    expect(await a.presence.accept(first.bytes)).toBe(true)
    expect(a.presence.get(first.id)?.online).toBe(true)
    const before = { ...a.presence.stats }
    expect(await a.presence.accept(first.bytes)).toBe(false)
    expect(await a.presence.accept(new Uint8Array(first.bytes))).toBe(false)
    expect(a.presence.stats).toEqual({ ...before, stale: before.stale + 2 })
    // the digest index follows the table: the next version is news, and the old copy stays stale
    const second = await peerRecord(a, 2, first.key)
    expect(await a.presence.accept(second.bytes)).toBe(true)
    expect(a.presence.get(first.id)?.name).toBe('p2')
    expect(await a.presence.accept(first.bytes)).toBe(false)
    expect(a.presence.stats.accepted).toBe(before.accepted + 1)
    expect(a.presence.stats.rejected).toBe(before.rejected)
  })

  it('accepted records reach the store written behind in one batch, and at stop', async () => {
    const { home, mesh, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await startNode({ home, name: 'a', registry: false })
    const records = []
    for (let i = 0; i < 5; i++) records.push(await peerRecord(a, 1))
    const t0 = Date.now()
    for (const r of records) expect(await a.presence.accept(r.bytes)).toBe(true)
    // a later version of one peer replaces its pending record: the newest is what is saved
    const newest = await peerRecord(a, 7, records[0]?.key)
    expect(await a.presence.accept(newest.bytes)).toBe(true)
    const stored = sublevel(a.store, 'presence')
    // written behind: not on disk at once, then all of them within the delay
    expect(await stored.get(newest.id)).toBeUndefined()
    const bound = Date.now() + SAVE_DELAY_MS * 10
    while ((await stored.get(newest.id)) == null && Date.now() < bound) await new Promise(resolve => setTimeout(resolve, 50))
    expect(await stored.get(newest.id)).toEqual(newest.bytes)
    const late = await peerRecord(a, 1)
    expect(await a.presence.accept(late.bytes)).toBe(true)
    records.push(late)
    await a.stop()
    // stop wrote what no batch had yet (`late`); the store is closed now: read it back
    expect(Date.now() - t0).toBeLessThan(SAVE_DELAY_MS * 10)
    const db = await openStore(paths.data(home, mesh.name, a.key.session), SESSION_LAYOUT)
    try {
      const saved = new Map<string, Uint8Array>()
      for await (const [k, v] of sublevel(db, 'presence').iterator()) saved.set(k, v)
      for (const r of records.slice(1)) expect(saved.get(r.id)).toEqual(r.bytes)
      expect(saved.get(newest.id)).toEqual(newest.bytes)
    } finally {
      await db.close()
    }
  })
})
