import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type MeshNode, presenceTopic, signRecord } from '../src/index.js'
import { presenceKey } from '../src/identity/secrets.js'
import { presenceProtocol } from '../src/presence/constants.js'
import { sealBody } from '../src/presence/record.js'
import { homeWithMesh, rng, startNode, untilAllSee, untilSubscribed } from './helpers.js'

describe('hostile presence frames', () => {
  let a: MeshNode
  let b: MeshNode
  let cleanup: () => Promise<void>
  let valid: Uint8Array

  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    a = await startNode({ home: h.home, name: 'alice' })
    b = await startNode({ home: h.home, name: 'bob' })
    await untilAllSee([a, b])
    valid = a.presence.ownRecord() ?? new Uint8Array()
  })
  afterAll(async () => {
    await a.stop()
    await b.stop()
    await cleanup()
  })

  async function rejected(frame: Uint8Array): Promise<void> {
    const before = b.presence.stats.rejected + b.presence.stats.stale
    expect(await b.presence.accept(frame)).toBe(false)
    expect(b.presence.stats.rejected + b.presence.stats.stale).toBe(before + 1)
  }

  it('refuses random, truncated, oversized and bit-flipped frames', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100000)
    const r = rng(seed)
    try {
      for (let i = 0; i < 200; i++) await rejected(new Uint8Array(randomBytes(Math.floor(r() * 600))))
      for (let cut = 1; cut < valid.byteLength; cut += 7) await rejected(valid.subarray(0, cut))
      await rejected(new Uint8Array(64 * 1024))
      for (let i = 0; i < 100; i++) {
        const t = new Uint8Array(valid)
        const at = Math.floor(r() * t.byteLength)
        t[at] = (t[at] ?? 0) ^ (1 << Math.floor(r() * 8))
        await rejected(t)
      }
    } catch (err) {
      throw new Error(`failed with SEED=${seed}: ${(err as Error).message}`)
    }
  })

  it('refuses forged, foreign-mesh, unopenable and future-dated records', async () => {
    const mesh = a.mesh
    const pk = presenceKey(mesh.contentSecret ?? new Uint8Array(32), mesh.id)
    const mallory = await generateKeyPair('Ed25519')
    const body = { name: 'alice', role: '', groups: [], status: 'idle' as const, summary: '', cwd: '/', host: 'h' }
    const base = { v: 1 as const, inc: Date.now(), seq: 1, at: Date.now(), addrs: [], gone: false }
    // claims alice's key, signed by mallory
    const alicePub = a.libp2p.peerId.publicKey?.raw ?? new Uint8Array(32)
    const forged = await signRecord(mesh.id, mallory, { ...base, peer: alicePub, body: sealBody(pk, alicePub, body) })
    await rejected(forged)
    // properly self-signed, but for another mesh id
    const mpub = mallory.publicKey.raw
    await rejected(await signRecord('0000000000000000', mallory, { ...base, peer: mpub, body: sealBody(pk, mpub, body) }))
    // signed for this mesh but the body is sealed with another key (no content secret)
    await rejected(await signRecord(mesh.id, mallory, { ...base, peer: mpub, body: sealBody(new Uint8Array(32), mpub, body) }))
    // dated an hour ahead
    await rejected(await signRecord(mesh.id, mallory, { ...base, at: Date.now() + 3_600_000, peer: mpub, body: sealBody(pk, mpub, body) }))
    // a replay of alice's current record changes nothing (the first copy may still be news)
    await b.presence.accept(valid)
    await rejected(valid)
    // a body over its limits never gets signed by an honest node, and is refused if crafted
    const huge = encodeFrame({ ...base, peer: mpub, body: new Uint8Array(9000), sig: new Uint8Array(64) })
    await rejected(huge)
    expect(b.peers().map(p => p.name)).toEqual(['alice'])
  })

  it('survives junk over the exchange protocol and on the presence topic', async () => {
    const before = b.presence.stats.rejected
    const conn = a.libp2p.getConnections(b.libp2p.peerId)[0]
    if (conn == null) throw new Error('not connected')
    const stream = await conn.newStream(presenceProtocol(a.mesh.id))
    const lp = lpStream(stream)
    await lp.writeV([new Uint8Array(randomBytes(100)), new Uint8Array([0xa1, 0x61]), valid.subarray(0, 50)])
    await stream.close()
    const topic = presenceTopic(a.mesh.id)
    await untilSubscribed(a, b, topic, 'bob on the topic')
    const published = new Promise<void>(resolve => {
      b.addEventListener('presence:reject', () => {
        if (b.presence.stats.rejected >= before + 4) resolve()
      })
    })
    // alice's own validator would refuse to publish junk: take it away to play a hostile member
    const own = a.libp2p.services.pubsub.topicValidators.get(topic)
    a.libp2p.services.pubsub.topicValidators.delete(topic)
    await a.libp2p.services.pubsub.publish(topic, new Uint8Array(randomBytes(200)))
    if (own != null) a.libp2p.services.pubsub.topicValidators.set(topic, own)
    await published
    expect(b.presence.get(a.peerId)?.online).toBe(true)
    await a.setPresence({ summary: 'still fine' })
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (b.presence.get(a.peerId)?.summary === 'still fine') resolve()
      }
      b.addEventListener('peer:update', check)
      check()
    })
  })
})
