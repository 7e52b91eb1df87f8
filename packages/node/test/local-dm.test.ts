/**
 * The same-home DM socket (SPEC.md §8.9): peers sharing a home take DMs on a unix socket
 * with the §8.3 frames after a hello, not over a libp2p connection; what reaches the socket
 * passes the same choke-point.
 */
import { connect, createServer, type Socket } from 'node:net'
import { chown, lstat, rm } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { MeshNode } from '../src/index.js'
import { PairKeys } from '../src/crypto/index.js'
import { encodeFrame } from '../src/codec.js'
import { idText, newMessageId, sealDm } from '../src/messaging/envelope.js'
import { decodeDmFrame, encodeDmFrame } from '../src/messaging/frames.js'
import { SocketFrames } from '../src/messaging/frame-stream.js'
import { MAX_DM_FRAME_BYTES } from '../src/messaging/constants.js'
import { homeWithMesh, received, startNode, untilAllSee } from './helpers.js'

describe('same-home DM socket', () => {
  let a: MeshNode
  let b: MeshNode
  let cleanup: () => Promise<void>
  let home: string
  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    home = h.home
    a = await startNode({ home: h.home, name: 'alice' })
    b = await startNode({ home: h.home, name: 'bob' })
    await untilAllSee([a, b])
  })
  afterAll(async () => {
    await Promise.all([a, b].map(async n => n.stop()))
    await cleanup()
  })

  const pub = (n: MeshNode): Uint8Array => n.key.privateKey.publicKey.raw
  const local = (n: MeshNode) => {
    const l = n.mail.dm.local
    if (l == null) throw new Error('no local DM socket')
    return l
  }
  function envelope(from: MeshNode, to: MeshNode, body: string): Uint8Array {
    const keys = new PairKeys(
      pub(from),
      from.key.privateKey.raw.subarray(0, 32),
      from.mesh.contentSecret ?? new Uint8Array(32),
      from.mesh.id
    )
    const ts = Date.now()
    return sealDm(
      from.mesh.id,
      keys.key(pub(to)),
      { from: pub(from), to: pub(to), id: newMessageId(), ts, exp: ts + 60_000 },
      { body, pri: 'next' }
    )
  }
  /** a raw client of b's socket, as another process of this user would be */
  async function raw(): Promise<{ socket: Socket; lp: SocketFrames; closed: Promise<void> }> {
    const path = local(b).path
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => {
        resolve(s)
      })
      s.once('error', reject)
    })
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
    return { socket, lp: new SocketFrames(socket, MAX_DM_FRAME_BYTES), closed }
  }

  it('a DM between two nodes of one home goes over the socket, not a libp2p stream, and is acked', async () => {
    // without the 2 s upkeep tick: the first DM to a peer must leave when it is queued (it
    // waited for the tick, ~1 s on average, before)
    clearInterval((a.mail.dm as unknown as { timer: ReturnType<typeof setInterval> }).timer)
    expect((await lstat(local(b).path)).mode & 0o777).toBe(0o600)
    const opened = local(a).stats.opened
    const served = local(b).stats.served
    const got = received(b, m => m.body === 'over the socket')
    const delivered = new Promise<string>(resolve => {
      a.addEventListener('message:status', e => {
        if (e.detail.status === 'delivered') resolve(e.detail.id)
      })
    })
    const [r] = await a.mail.send('bob', 'over the socket')
    expect((await got).from).toBe(a.peerId)
    expect(await delivered).toBe(r?.id)
    expect(local(a).stats.opened).toBe(opened + 1)
    expect(local(b).stats.served).toBe(served + 1)
    const dmStreams = a.libp2p
      .getConnections(b.libp2p.peerId)
      .flatMap(c => c.streams)
      .filter(s => s.protocol?.endsWith('/dm/1.0.0'))
    expect(dmStreams).toEqual([])
  })

  it('a peer that comes online has its pair key derived before the first DM to or from it', async () => {
    const c = await startNode({ home, name: 'carol' })
    try {
      await untilAllSee([a, b, c])
      await Promise.all([a, c].map(async n => n.mail.dm.warmed()))
      const derived = [a, c].map(n => n.mail.dm.keys.stats.derived)
      const got = received(c, m => m.body === 'no key to derive')
      await a.mail.send('carol', 'no key to derive')
      expect((await got).from).toBe(a.peerId)
      // neither end derived one for this DM: both had it from carol's arrival
      expect([a, c].map(n => n.mail.dm.keys.stats.derived)).toEqual(derived)
    } finally {
      await c.stop()
    }
  })

  it('the wire: a hello, then §8.3 frames; an envelope gets an `a` frame with its id', async () => {
    const { lp, socket } = await raw()
    await lp.write(encodeFrame({ v: 1, from: pub(a), to: pub(b) }))
    const env = envelope(a, b, 'by hand')
    const got = received(b, m => m.body === 'by hand')
    await lp.write(encodeDmFrame({ t: 'm', e: env }))
    const ack = decodeDmFrame(await lp.read())
    expect(ack.t).toBe('a')
    expect((await got).from).toBe(a.peerId)
    if (ack.t === 'a') expect(ack.ids.map(idText)).toEqual([(await got).id])
    socket.destroy()
  })

  it("an envelope whose sender is not the hello's `from` is refused as forged, and the socket goes on", async () => {
    const mallory = await generateKeyPair('Ed25519')
    const forged = b.mail.dm.stats.rejected.forged ?? 0
    const { lp, socket } = await raw()
    await lp.write(encodeFrame({ v: 1, from: mallory.publicKey.raw, to: pub(b) }))
    await lp.write(encodeDmFrame({ t: 'm', e: envelope(a, b, 'not from mallory') }))
    // the stream goes on: a genuine frame after it is still read (and acked, as the hello's peer's own would be)
    await lp.write(encodeDmFrame({ t: 'r', ids: [] }))
    await expect.poll(() => b.mail.dm.stats.rejected.forged ?? 0).toBe(forged + 1)
    expect(socket.destroyed).toBe(false)
    socket.destroy()
  })

  it('a hello for another peer, a malformed hello, or no frame CBOR at all closes the socket', async () => {
    const refused = local(b).stats.refused
    const wrong = await raw()
    await wrong.lp.write(encodeFrame({ v: 1, from: pub(a), to: pub(a) }))
    await wrong.closed
    const extra = await raw()
    await extra.lp.write(encodeFrame({ v: 1, from: pub(a), to: pub(b), x: 1 }))
    await extra.closed
    const junk = await raw()
    junk.socket.write(Buffer.from([3, 0xff, 0xff, 0xff]))
    await junk.closed
    expect(local(b).stats.refused).toBe(refused + 3)
    // bob still takes DMs
    const got = received(b, m => m.body === 'still here')
    await a.mail.send('bob', 'still here')
    await got
  })

  it.skipIf(process.getuid?.() !== 0)(
    "another uid's socket at bob's path gets nothing: the DM goes by libp2p (runs as root to play the other uid)",
    async () => {
      const path = local(b).path
      await local(b).stop()
      const got: Buffer[] = []
      const planted = createServer(s => s.on('data', d => got.push(d)))
      await new Promise<void>(resolve => planted.listen(path, resolve))
      await chown(path, 65534, 65534)
      try {
        const opened = local(a).stats.opened
        // a's channel to bob is open from the earlier tests: close it so the next DM opens one
        ;(a.mail.dm as unknown as { channels: Map<string, { close: () => void }> }).channels.get(b.peerId)?.close()
        ;(a.mail.dm as unknown as { channels: Map<string, unknown> }).channels.delete(b.peerId)
        const r = received(b, m => m.body === 'not through the planted socket')
        await a.mail.send('bob', 'not through the planted socket')
        await r
        expect(local(a).stats.opened).toBe(opened)
        expect(got).toEqual([])
      } finally {
        await new Promise<void>(resolve => planted.close(() => resolve()))
        await rm(path, { force: true })
        await local(b).start()
      }
    }
  )

  it('a sender that ignores refusals on the socket is blocked: its socket closes and its next hello is refused', async () => {
    const carol = await startNode({
      home,
      name: 'carol',
      limits: { dm: { rate: 1, burst: 5, byteRate: 1 << 20, byteBurst: 1 << 20 }, graceMs: 0, blockAfter: 10 }
    })
    try {
      const path = local(carol).path
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect(path, () => resolve(s))
        s.once('error', reject)
      })
      const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
      const lp = new SocketFrames(socket, MAX_DM_FRAME_BYTES)
      await lp.write(encodeFrame({ v: 1, from: pub(a), to: pub(carol) }))
      // genuine envelopes from alice, past her budget, x frames unread: strikes, then a block
      for (let i = 0; i < 40 && !socket.destroyed; i++) await lp.write(encodeDmFrame({ t: 'm', e: envelope(a, carol, `flood ${i}`) }))
      await closed
      expect(carol.guard.blocked(a.peerId)).toBe(true)
      const refused = local(carol).stats.refused
      const again = await new Promise<Socket>((resolve, reject) => {
        const s = connect(path, () => resolve(s))
        s.once('error', reject)
      })
      const closedAgain = new Promise<void>(resolve => again.once('close', () => resolve()))
      await new SocketFrames(again, MAX_DM_FRAME_BYTES).write(encodeFrame({ v: 1, from: pub(a), to: pub(carol) }))
      await closedAgain
      expect(local(carol).stats.refused).toBe(refused + 1)
      expect(carol.mail.inbox.unread).toBeLessThanOrEqual(5 + 1)
    } finally {
      await carol.stop()
    }
  })

  it('an oversized length prefix closes the socket before anything is buffered', async () => {
    const { socket, closed } = await raw()
    // a varint for 2^40 bytes
    socket.write(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]))
    await closed
  })
})
