/** Malicious updates: none is applied, nothing crashes, honest replicas stay converged. */
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { encodeFrame } from '../src/index.js'
import { clientIdOf, MemoryLog, Replica, SharedState, signUpdate } from '../src/state/index.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

function craft(client: number, fn: (doc: Y.Doc) => void): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = client
  let update: Uint8Array = new Uint8Array()
  doc.on('update', (u: Uint8Array) => {
    update = u
  })
  doc.transact(() => {
    fn(doc)
  })
  return update
}

describe('malicious CRDT updates', () => {
  it('are refused at the door, and honest replicas stay converged', async () => {
    const alice = await generateKeyPair('Ed25519')
    const mallory = await generateKeyPair('Ed25519')
    const aliceId = peerIdFromPrivateKey(alice).toString()
    const malloryId = peerIdFromPrivateKey(mallory).toString()
    const target = new Replica(MESH, await generateKeyPair('Ed25519'), SEAL, 1, new MemoryLog(), 'bob')
    const honest = new Replica(MESH, alice, SEAL, 1, new MemoryLog(), aliceId)
    const aliceState = new SharedState(honest, () => {})
    await aliceState.set('k', 'v')
    for (const env of await honest.missing({})) expect(await target.ingest(env)).toBe('applied')
    const before = JSON.stringify(target.doc.toJSON())
    const mInc = 3
    const mc = clientIdOf(mallory.publicKey.raw, mInc)
    let deep: unknown = 'x'
    for (let i = 0; i < 40; i++) deep = { d: deep }
    const cases: Array<[string, Uint8Array]> = [
      [
        "another author's client id",
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          1,
          craft(clientIdOf(alice.publicKey.raw, 1), d => {
            d.getMap('state').set('k', { v: 'evil', by: malloryId, at: 1 })
          })
        )
      ],
      [
        'a value naming another author',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          2,
          craft(mc, d => {
            d.getMap('state').set('k', { v: 'evil', by: aliceId, at: 1 })
          })
        )
      ],
      [
        'a nested Yjs type',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          3,
          craft(mc, d => {
            d.getMap('state').set('k', new Y.Map())
          })
        )
      ],
      [
        'another root',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          4,
          craft(mc, d => {
            d.getMap('evil').set('k', { v: 1, by: malloryId, at: 1 })
          })
        )
      ],
      [
        'text content',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          5,
          craft(mc, d => {
            d.getText('notes').insert(0, 'hello')
          })
        )
      ],
      [
        'a deeply nested value',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          6,
          craft(mc, d => {
            d.getMap('state').set('k', { v: deep, by: malloryId, at: 1 })
          })
        )
      ],
      [
        'a huge value',
        await signUpdate(
          MESH,
          mallory,
          SEAL,
          mInc,
          7,
          craft(mc, d => {
            d.getMap('state').set('k', { v: 'x'.repeat(100_000), by: malloryId, at: 1 })
          })
        )
      ],
      ['garbage as the update', await signUpdate(MESH, mallory, SEAL, mInc, 8, new Uint8Array(randomBytes(300)))],
      [
        "a non-member's seal",
        await signUpdate(
          MESH,
          mallory,
          new Uint8Array(32).fill(9),
          mInc,
          9,
          craft(mc, d => {
            d.getMap('state').set('z', { v: 1, by: malloryId, at: 1 })
          })
        )
      ],
      [
        'an oversized envelope',
        encodeFrame({ v: 1, author: mallory.publicKey.raw, inc: 1, seq: 1, update: new Uint8Array(400_000), sig: new Uint8Array(64) })
      ],
      ['random bytes', new Uint8Array(randomBytes(500))]
    ]
    // a forged author: mallory's signature on an envelope that names alice
    const forged = await signUpdate(
      MESH,
      mallory,
      SEAL,
      1,
      99,
      craft(clientIdOf(alice.publicKey.raw, 1), d => {
        d.getMap('state').set('k', { v: 'evil', by: aliceId, at: 1 })
      })
    )
    const bytes = Buffer.from(forged)
    bytes.set(alice.publicKey.raw, bytes.indexOf(Buffer.from(mallory.publicKey.raw)))
    cases.push(['a forged author', new Uint8Array(bytes)])
    for (const [what, env] of cases) expect(await target.ingest(env), what).toBe('rejected')
    expect(target.stats.rejected).toBe(cases.length)
    expect(JSON.stringify(target.doc.toJSON())).toBe(before)
    // and the honest stream still flows
    await aliceState.set('k', 'v2')
    for (const env of await honest.missing(target.versionVector())) expect(await target.ingest(env)).toBe('applied')
    expect(JSON.stringify(target.doc.getMap('state').toJSON())).toBe(JSON.stringify(honest.doc.getMap('state').toJSON()))
  })
})

describe('placing updates before they touch the document', () => {
  it('an overwrite that arrives before the entry it replaces waits, then applies; a bad overwrite is refused', async () => {
    const alice = await generateKeyPair('Ed25519')
    const bob = await generateKeyPair('Ed25519')
    const a = new Replica(MESH, alice, SEAL, 1, new MemoryLog(), peerIdFromPrivateKey(alice).toString())
    const b = new Replica(MESH, bob, SEAL, 1, new MemoryLog(), peerIdFromPrivateKey(bob).toString())
    const target = new Replica(MESH, await generateKeyPair('Ed25519'), SEAL, 1, new MemoryLog(), 'target')
    await new SharedState(a, () => {}).set('k', 'from alice')
    for (const env of await a.missing({})) await b.ingest(env)
    const bState = new SharedState(b, () => {})
    await bState.set('k', 'from bob') // placed by its origin: alice's entry
    const [bobEnv] = await b.missing({ ...a.versionVector() })
    const [aliceEnv] = await a.missing({})
    expect(await target.ingest(bobEnv as Uint8Array)).toBe('deferred')
    expect(target.deferred).toBe(1)
    expect(await target.ingest(bobEnv as Uint8Array)).toBe('duplicate')
    expect(await target.ingest(aliceEnv as Uint8Array)).toBe('applied')
    expect(target.deferred).toBe(0)
    expect(target.doc.getMap('state').get('k')).toMatchObject({ v: 'from bob' })
    expect(target.stats).toMatchObject({ applied: 2, rejected: 0 })
    // bob, modified, overwrites k with a value of the wrong shape: placed through the origin, refused
    const rejects: string[] = []
    target.addEventListener('crdt:reject', evt => {
      rejects.push(evt.detail.reason)
    })
    const evil = await signUpdate(
      MESH,
      bob,
      SEAL,
      1,
      2,
      (() => {
        const d = new Y.Doc()
        Y.applyUpdate(d, Y.encodeStateAsUpdate(b.doc))
        d.clientID = clientIdOf(bob.publicKey.raw, 1)
        let u: Uint8Array = new Uint8Array()
        d.on('update', (x: Uint8Array) => {
          u = x
        })
        d.getMap('state').set('k', { v: 'x', by: peerIdFromPrivateKey(bob).toString(), at: 1, extra: true })
        return u
      })()
    )
    const before = JSON.stringify(target.doc.toJSON())
    expect(await target.ingest(evil)).toBe('rejected')
    expect(rejects[0]).toMatch(/state value that breaks its schema/)
    expect(JSON.stringify(target.doc.toJSON())).toBe(before)
    // bob's next write in that incarnation follows the refused clock, which nobody will hold: refused too
    const next = await signUpdate(
      MESH,
      bob,
      SEAL,
      1,
      3,
      (() => {
        const d = new Y.Doc()
        Y.applyUpdate(d, Y.encodeStateAsUpdate(b.doc))
        d.clientID = clientIdOf(bob.publicKey.raw, 1) // after: Yjs re-keys a doc that receives its own client id
        d.getMap('state').set('z', { v: 0, by: peerIdFromPrivateKey(bob).toString(), at: 1 }) // clock after the refused one
        let u: Uint8Array = new Uint8Array()
        d.on('update', (x: Uint8Array) => {
          u = x
        })
        d.getMap('state').set('z2', { v: 1, by: peerIdFromPrivateKey(bob).toString(), at: 1 })
        return u
      })()
    )
    expect(await target.ingest(next)).toBe('rejected')
    expect(rejects[1]).toMatch(/skips clocks/)
    expect(target.stats.rejected).toBe(2)
  })
})
