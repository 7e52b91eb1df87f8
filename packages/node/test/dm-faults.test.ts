import { lpStream } from '@libp2p/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type MeshNode } from '../src/index.js'
import { dmProtocol } from '../src/messaging/constants.js'
import { PairKeys } from '../src/crypto/index.js'
import { decodeDm, newMessageId, sealDm } from '../src/messaging/envelope.js'
import { encodeDmFrame } from '../src/messaging/frames.js'
import { homeWithMesh, startNode, untilAllSee } from './helpers.js'

describe('hostile DMs at the choke-point', () => {
  let a: MeshNode
  let b: MeshNode
  let m: MeshNode
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    a = await startNode({ home: h.home, name: 'alice' })
    b = await startNode({ home: h.home, name: 'bob' })
    m = await startNode({ home: h.home, name: 'mallory' })
    await untilAllSee([a, b, m])
  })
  afterAll(async () => {
    await Promise.all([a, b, m].map(async n => n.stop()))
    await cleanup()
  })

  const pub = (n: MeshNode): Uint8Array => n.key.privateKey.publicKey.raw
  const keysOf = (n: MeshNode): PairKeys =>
    new PairKeys(pub(n), n.key.privateKey.raw.subarray(0, 32), n.mesh.contentSecret ?? new Uint8Array(32), n.mesh.id)
  function envelope(from: MeshNode, to: MeshNode, body = 'hi', ts = Date.now()): Uint8Array {
    return sealDm(
      from.mesh.id,
      keysOf(from).key(pub(to)),
      { from: pub(from), to: pub(to), id: newMessageId(), ts, exp: ts + 60_000 },
      { body, pri: 'next' }
    )
  }
  const rejected = (reason: string): number => b.mail.dm.stats.rejected[reason as 'forged'] ?? 0

  it('accepts a genuine envelope once, and counts its replay as a duplicate', async () => {
    const env = envelope(a, b, 'genuine')
    expect(await b.mail.dm.accept(env, { from: a.peerId })).toBeTypeOf('string')
    const before = b.mail.inbox.unread
    const dup = b.mail.dm.stats.duplicates
    // the captured envelope replayed, even over a new stream, is acked but never delivered again
    expect(await b.mail.dm.accept(env, { from: a.peerId })).toBeTypeOf('string')
    expect(b.mail.inbox.unread).toBe(before)
    expect(b.mail.dm.stats.duplicates).toBe(dup + 1)
  })

  it('refuses a forged sender: an envelope sent by mallory claiming to be from alice', async () => {
    const before = rejected('forged')
    expect(await b.mail.dm.accept(envelope(a, b), { from: m.peerId })).toBeUndefined()
    expect(rejected('forged')).toBe(before + 1)
    // mallory re-labels her own envelope as alice's: the pair key no longer opens it
    const e = decodeDm(envelope(m, b))
    const relabeled = sealDm(
      a.mesh.id,
      keysOf(m).key(pub(b)),
      { from: pub(a), to: e.to, id: e.id, ts: e.ts, exp: e.exp },
      { body: 'x', pri: 'next' }
    )
    const t = rejected('tampered')
    expect(await b.mail.dm.accept(relabeled)).toBeUndefined()
    expect(rejected('tampered')).toBe(t + 1)
  })

  it('refuses tampered ciphertext, misaddressed, future-dated, expired and oversized envelopes', async () => {
    const e = decodeDm(envelope(a, b))
    const ct = new Uint8Array(e.ct)
    ct[20] = (ct[20] ?? 0) ^ 0x10
    const flipped = encodeFrame({ ...e, ct })
    const cases: Array<[Uint8Array, string]> = [
      [flipped, 'tampered'],
      [envelope(a, m), 'misaddressed'],
      [envelope(a, b, 'later', Date.now() + 3_600_000), 'future'],
      [envelope(a, b, 'old', Date.now() - 120_000), 'expired'],
      [new Uint8Array(200 * 1024), 'oversized'],
      [new Uint8Array([0xa1, 0x01]), 'malformed']
    ]
    for (const [bytes, reason] of cases) {
      const before = rejected(reason)
      expect(await b.mail.dm.accept(bytes, { from: a.peerId })).toBeUndefined()
      expect(rejected(reason), reason).toBe(before + 1)
    }
  })

  it('a hostile stream gets no ack for bad frames and the node stays healthy', async () => {
    const stream = await m.libp2p.dialProtocol(b.libp2p.getMultiaddrs(), dmProtocol(m.mesh.id))
    const lp = lpStream(stream)
    const forged = rejected('forged')
    await lp.write(encodeDmFrame({ t: 'm', e: envelope(a, b) }))
    await lp.write(new Uint8Array([1, 2, 3]))
    await new Promise<void>(resolve => {
      b.addEventListener('message:reject', () => {
        if (rejected('forged') > forged && rejected('malformed') > 0) resolve()
      })
    })
    stream.abort(new Error('done'))
    const got = new Promise<void>(resolve => {
      b.addEventListener('message:receive', e => {
        if (e.detail.body === 'still fine') resolve()
      })
    })
    await a.mail.send('bob', 'still fine')
    await got
  })
})
