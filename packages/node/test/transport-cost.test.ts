/**
 * What a new connection costs, made cheaper without changing what goes on the wire: Noise's
 * X25519 with kept KeyObjects, the peer store spared protocol merges it already holds, the
 * length-prefix decoder without a new RangeError per chunk.
 */
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keepSigningKey, newEd25519Key } from '../src/identity/keys.js'
import type { MeshNode } from '../src/index.js'
import { cheapEmptyLengthPrefix } from '../src/transport/lp-decoder.js'
import { batchStats } from '../src/transport/noise-batch.js'
import { keptKeyCrypto } from '../src/transport/noise-crypto.js'
import { skipKnownProtocolMerges } from '../src/transport/protocol-merges.js'
import { homeWithMesh, startNode, until } from './helpers.js'

describe('noise X25519 with kept keys', () => {
  it('agrees with the default provider on every shared key, both ways, and on keys from a seed', () => {
    for (let i = 0; i < 20; i++) {
      const ours = keptKeyCrypto.generateX25519KeyPair()
      const theirs = defaultCrypto.generateX25519KeyPair()
      const a = keptKeyCrypto.generateX25519SharedKey(ours.privateKey, theirs.publicKey)
      expect(Buffer.from(a)).toEqual(Buffer.from(defaultCrypto.generateX25519SharedKey(theirs.privateKey, ours.publicKey)))
      expect(Buffer.from(a)).toEqual(Buffer.from(defaultCrypto.generateX25519SharedKey(ours.privateKey, theirs.publicKey)))
      // a private key we did not make (noise could hand one over as a list of chunks)
      const list = new Uint8ArrayList(theirs.privateKey.subarray(0, 7), theirs.privateKey.subarray(7))
      // (uint8arraylist 3 here, 2 in noise: the same shape)
      const shared = keptKeyCrypto.generateX25519SharedKey(list as unknown as Uint8Array, ours.publicKey)
      expect(Buffer.from(shared)).toEqual(Buffer.from(a))
    }
    const seed = new Uint8Array(32).fill(9)
    const k = keptKeyCrypto.generateX25519KeyPairFromSeed(seed)
    expect(Buffer.from(k.publicKey)).toEqual(Buffer.from(defaultCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
    expect(Buffer.from(k.privateKey)).toEqual(Buffer.from(seed))
  })

  it('refuses what the default refuses: a low-order public key (all-zero secret) and wrong lengths', () => {
    const ours = keptKeyCrypto.generateX25519KeyPair()
    expect(() => keptKeyCrypto.generateX25519SharedKey(ours.privateKey, new Uint8Array(32))).toThrow()
    expect(() => defaultCrypto.generateX25519SharedKey(ours.privateKey, new Uint8Array(32))).toThrow()
    expect(() => keptKeyCrypto.generateX25519SharedKey(ours.privateKey, new Uint8Array(31).fill(5))).toThrow()
    expect(() => keptKeyCrypto.generateX25519SharedKey(new Uint8Array(31).fill(5), ours.publicKey)).toThrow()
  })
})

describe('the libp2p signing key', () => {
  it('signs as before (ed25519 is deterministic) and checks its abort signal', async () => {
    const key = await newEd25519Key()
    const msg = new Uint8Array([1, 2, 3, 4, 5])
    const before = await key.sign(msg)
    keepSigningKey(key)
    const after = await key.sign(new Uint8ArrayList(msg.subarray(0, 2), msg.subarray(2)))
    expect(Buffer.from(after)).toEqual(Buffer.from(before))
    expect(await key.publicKey.verify(msg, after)).toBe(true)
    const ac = new AbortController()
    ac.abort()
    expect(() => key.sign(msg, { signal: ac.signal })).toThrow()
  })
})

describe('length-prefixed decoder', () => {
  it('yields the same frames from any chunking, and still refuses an oversize length', () => {
    cheapEmptyLengthPrefix()
    const u16 = (data: Uint8Array | Uint8ArrayList): number => {
      if (data.byteLength < 2) throw new RangeError('short')
      return data instanceof Uint8Array ? (data[0]! << 8) | data[1]! : data.getUint16(0)
    }
    const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7), new Uint8Array([9])]
    const wire = Buffer.concat(frames.map(f => Buffer.concat([Buffer.from([f.byteLength >> 8, f.byteLength & 255]), f])))
    for (const cut of [1, 2, 3, 5, 64, wire.byteLength]) {
      const d = new LengthPrefixedDecoder({ lengthDecoder: u16, encodingLength: () => 2 })
      const got: Uint8Array[] = []
      for (let i = 0; i < wire.byteLength; i += cut) for (const f of d.decode(wire.subarray(i, i + cut))) got.push(f.subarray())
      expect(got.map(f => Buffer.from(f))).toEqual(frames.map(f => Buffer.from(f)))
    }
    const small = new LengthPrefixedDecoder({ lengthDecoder: u16, encodingLength: () => 2, maxDataLength: 10 })
    expect(() => [...small.decode(new Uint8Array([0, 200, 1]))]).toThrow(/length/)
  })
})

describe('a new connection', () => {
  let cleanup: () => Promise<void>
  const nodes: MeshNode[] = []

  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    nodes.push(await startNode({ home: h.home, name: 'a', registry: false, control: false }))
    nodes.push(await startNode({ home: h.home, name: 'b', registry: false, control: false }))
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await cleanup()
  })

  it('a merge of protocols the entry holds skips the store; an update of the entry or a new protocol goes through', async () => {
    const [a, b] = nodes as [MeshNode, MeshNode]
    const stats = skipKnownProtocolMerges(a.libp2p)
    // installed once per node by the transport: the same counters come back
    expect(skipKnownProtocolMerges(a.libp2p)).toBe(stats)
    await a.dialer.learn(b.peerId, b.multiaddrs())
    await a.dialer.connect(b.peerId)
    const id = b.libp2p.peerId
    const P = '/claudemesh-test/merge/1.0.0'
    const passed = stats.passed
    const skipped = stats.skipped
    expect((await a.libp2p.peerStore.merge(id, { protocols: [P] })).protocols).toContain(P)
    expect(stats.passed).toBe(passed + 1)
    expect((await a.libp2p.peerStore.merge(id, { protocols: [P] })).protocols).toContain(P)
    expect(stats.skipped).toBe(skipped + 1)
    // the entry loses P (identify replaces the list): the next merge of P must write it again
    await a.libp2p.peerStore.patch(id, { protocols: ['/other/1.0.0'] })
    await a.libp2p.peerStore.merge(id, { protocols: [P] })
    expect(stats.passed).toBe(passed + 2)
    expect((await a.libp2p.peerStore.get(id)).protocols).toContain(P)
    // gone from the store: written again
    await a.libp2p.peerStore.delete(id)
    await a.libp2p.peerStore.merge(id, { protocols: [P] })
    expect(stats.passed).toBe(passed + 3)
    expect((await a.libp2p.peerStore.get(id)).protocols).toContain(P)
  })

  // the set-up's frames (identify, presence, gossipsub, syncs) leave in fewer Noise messages
  // than yamux wrote them; the bulk echo in transport.test.ts checks bytes and backpressure
  it('batches the frames of one event-loop turn into one Noise message', async () => {
    const [a, b] = nodes as [MeshNode, MeshNode]
    await a.libp2p.hangUp(b.libp2p.peerId)
    const sends = batchStats.sends
    const flushes = batchStats.flushes
    // (the test above deleted b from a's peer store)
    await a.dialer.learn(b.peerId, b.multiaddrs())
    await a.dialer.connect(b.peerId)
    await until(a.presence, ['peer:join', 'peer:update'], () => a.presence.get(b.peerId)?.online === true, 10_000, 'b online at a')
    const rtt = await a.libp2p.services.ping.ping(b.libp2p.peerId, { signal: AbortSignal.timeout(10_000) })
    expect(rtt).toBeGreaterThanOrEqual(0)
    expect(batchStats.sends - sends).toBeGreaterThan(10)
    expect(batchStats.flushes - flushes).toBeLessThan((batchStats.sends - sends) * 0.8)
  })
})
