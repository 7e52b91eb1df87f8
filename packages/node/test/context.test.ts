import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { clientIdOf, entryProblem, signUpdate, updateKey } from '../src/state/index.js'
import { getContext, shareContext } from '../src/control/context-methods.js'
import { until, startMesh } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 })))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function mesh(names: string[]): Promise<MeshNode[]> {
  return (await startMesh({ nodes, cleanups }, names)).nodes
}

describe('context hand-off', () => {
  it('a published hand-off reaches every peer, replaces the author\'s previous one, and is found by name, id fragment or "me"', async () => {
    const [a, b] = (await mesh(['alice', 'bob'])) as [MeshNode, MeshNode]
    await shareContext(a, { summary: 'first pass', files: ['src/a.ts'] })
    const r = await shareContext(a, {
      summary: 'refactored the outbox',
      files: ['src/outbox.ts', 'src/outbox.ts', ' '],
      decisions: ['keep CBOR']
    })
    expect(r.handOff).toMatchObject({ peer: a.peerId, name: 'alice', files: ['src/outbox.ts'], decisions: ['keep CBOR'] })
    await until(
      [b.data.context],
      ['context:change'],
      () => b.data.context.get(a.peerId)?.summary === 'refactored the outbox',
      15_000,
      'the hand-off at bob'
    )
    expect(getContext(b, 'alice').map(h => h.summary)).toEqual(['refactored the outbox'])
    expect(getContext(b, a.peerId.slice(-8)).map(h => h.peer)).toEqual([a.peerId])
    expect(getContext(a, 'me').map(h => h.peer)).toEqual([a.peerId])
    expect(getContext(a, 'bob')).toEqual([])
    expect(getContext(b).map(h => h.peer)).toEqual([a.peerId])
    expect(() => getContext(b, 'carol')).toThrow(/no peer "carol"/)
    await expect(shareContext(a, { summary: '  ' })).rejects.toThrow(/needs a summary/)
    await expect(shareContext(a, { summary: 'x', files: Array.from({ length: 65 }, (_, i) => `f${i}`) })).rejects.toThrow(
      /at most 64 files/
    )
    await expect(shareContext(a, { summary: 'x'.repeat(17 * 1024) })).rejects.toThrow(/at most 16384 bytes/)
    expect(a.data.context.get(a.peerId)?.summary).toBe('refactored the outbox')
  })

  it('with to, the hand-off goes as a DM only and is not published', async () => {
    const [a, b] = (await mesh(['alice', 'bob'])) as [MeshNode, MeshNode]
    const got = new Promise<string>(resolve => {
      b.addEventListener(
        'message:receive',
        e => {
          resolve(e.detail.body)
        },
        { once: true }
      )
    })
    const r = await shareContext(a, { summary: 'auth is done', decisions: ['JWT over cookies'], to: 'bob' })
    expect(r.sent?.map(s => s.name)).toEqual(['bob'])
    expect(await got).toBe('Context hand-off from alice:\n\nauth is done\n\nDecisions:\n- JWT over cookies')
    expect(a.data.context.size).toBe(0)
  })

  it("a member cannot write another member's hand-off: the schema ties the key to the signer", async () => {
    const [a, b] = (await mesh(['alice', 'mallory'])) as [MeshNode, MeshNode]
    const ok = { summary: 's', files: [], decisions: [], name: 'x', by: a.peerId, at: 1 }
    expect(entryProblem('context', a.peerId, ok)).toBeUndefined()
    expect(entryProblem('context', b.peerId, ok)).toMatch(/another member's id/)
    expect(entryProblem('context', a.peerId, { ...ok, files: ['x'.repeat(1025)] })).toMatch(/breaks its schema/)
    // mallory signs a hand-off put under alice's id: alice's replica refuses and counts it
    const doc = new Y.Doc()
    doc.clientID = clientIdOf(b.key.privateKey.publicKey.raw, 7)
    let update: Uint8Array | undefined
    doc.on('update', (u: Uint8Array) => {
      update = u
    })
    doc.getMap('context').set(a.peerId, { ...ok, by: b.peerId, summary: 'forged' })
    const env = await signUpdate(
      b.mesh.id,
      b.key.privateKey,
      updateKey(b.mesh.contentSecret as Uint8Array, b.mesh.id),
      7,
      1,
      update as Uint8Array
    )
    const replica = (a.shared as NonNullable<MeshNode['shared']>).replica
    const before = replica.stats.rejected
    expect(await replica.ingest(env)).toBe('rejected')
    expect(replica.stats.rejected).toBe(before + 1)
    expect(a.data.context.get(a.peerId)).toBeUndefined()
  })
})
