import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import type { Mesh, MeshNode } from '../src/index.js'
import { presenceKey } from '../src/identity/secrets.js'
import { presenceProtocol, presenceTopic } from '../src/presence/constants.js'
import { sendRecords } from '../src/presence/exchange.js'
import { sealBody, signRecord } from '../src/presence/record.js'
import { homeWithMesh, startNode, until } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

// heartbeats far away: no record in the test is re-sent by a timer
const CALM = { heartbeatMs: 600_000, ttlMs: 1_200_000, graceMs: 600_000 }

/** gossipsub's topic mesh of a node (`getMeshPeers` is not on the exported type) */
const meshPeers = (n: MeshNode, topic: string): string[] =>
  (n.libp2p.services.pubsub as unknown as { getMeshPeers: (t: string) => string[] }).getMeshPeers(topic)

/**
 * b, c and d in one home, c and d each joined to b only and c in b's topic mesh. No registry:
 * the test makes each connection itself; and no discovery dial (c would dial d when it learns
 * of it): c and d never connect.
 */
async function cAndDThroughB(): Promise<{ b: MeshNode; c: MeshNode; d: MeshNode; mesh: Mesh; topic: string }> {
  const { home, mesh, cleanup } = await homeWithMesh()
  cleanups.push(cleanup)
  const [b, c, d] = (await Promise.all(['b', 'c', 'd'].map(async name => startNode({ home, name, registry: false, presence: CALM })))) as [
    MeshNode,
    MeshNode,
    MeshNode
  ]
  nodes.push(b, c, d)
  for (const n of [b, c, d]) n.dialer.stop()
  const topic = presenceTopic(mesh.id)
  // b's topic mesh holds c before any record comes: no graft (and its catch-up) can carry one later
  const grafted = until(
    b.libp2p.services.pubsub,
    ['gossipsub:graft'],
    () => meshPeers(b, topic).includes(c.peerId),
    10_000,
    'c in the topic mesh of b'
  )
  await c.dialer.learn(b.peerId, b.multiaddrs())
  await c.dialer.connect(b.peerId)
  await grafted
  await d.dialer.learn(b.peerId, b.multiaddrs())
  await d.dialer.connect(b.peerId)
  return { b, c, d, mesh, topic }
}

/** The record of x, a session that never runs a node (so nothing but the test sends it). */
async function recordOfX(mesh: Mesh): Promise<{ xId: string; record: Uint8Array }> {
  const x = await generateKeyPair('Ed25519')
  const body = { name: 'x', role: '', groups: [], status: 'idle' as const, summary: '', cwd: '/', host: 'h' }
  const now = Date.now()
  const record = await signRecord(mesh.id, x, {
    v: 1,
    peer: x.publicKey.raw,
    inc: now,
    seq: 1,
    at: now,
    addrs: [],
    gone: false,
    body: sealBody(presenceKey(mesh.contentSecret as Uint8Array, mesh.id), x.publicKey.raw, body)
  })
  return { xId: peerIdFromPrivateKey(x).toString(), record }
}

describe('records that came by an exchange stream go on to the topic (SPEC.md §6.2)', () => {
  it('a member not connected to the sender learns a record that only an exchange stream carried', async () => {
    const { b, c, d, mesh } = await cAndDThroughB()
    // x's record is on d's exchange stream to b and nowhere else (d sends it without taking it
    // into its own table)
    const { xId, record } = await recordOfX(mesh)

    const learnt = until(c, ['peer:join'], () => c.presence.get(xId)?.online === true, 10_000, 'c to learn of x')
    const conn = d.libp2p.getConnections(b.libp2p.peerId)[0]
    if (conn == null) throw new Error('d is not connected to b')
    await sendRecords(conn, presenceProtocol(mesh.id), [record])
    await learnt
    expect(c.libp2p.getConnections(d.libp2p.peerId)).toHaveLength(0)
    expect(b.presence.get(xId)?.online).toBe(true)
    expect(c.presence.get(xId)?.name).toBe('x')
  })

  it('a record that comes by gossip and by an exchange stream at once still goes on (the gossip copy, when the stream copy could not)', async () => {
    const { b, c, d, mesh, topic } = await cAndDThroughB()
    await until(
      d.libp2p.services.pubsub,
      ['gossipsub:graft'],
      () => meshPeers(d, topic).includes(b.peerId),
      10_000,
      'b in the topic mesh of d'
    )
    const { xId, record } = await recordOfX(mesh)
    // b's check of the gossip copy waits until the stream copy is in b's table
    let release: () => void = () => {}
    const gate = new Promise<void>(resolve => {
      release = resolve
    })
    const gossipCopy = new Promise<void>(resolve => {
      const pb = b.presence as unknown as { ingest: (bytes: Uint8Array, conn?: unknown, forward?: boolean) => Promise<boolean> }
      const ingest = pb.ingest.bind(pb)
      pb.ingest = async (bytes, conn, forward) => {
        if (conn == null && Buffer.from(bytes).equals(Buffer.from(record))) {
          resolve()
          await gate
        }
        return ingest(bytes, conn, forward)
      }
    })
    const learnt = until(c, ['peer:join'], () => c.presence.get(xId)?.online === true, 5_000, 'c to learn of x')
    await d.libp2p.services.pubsub.publish(topic, record)
    await gossipCopy
    const conn = d.libp2p.getConnections(b.libp2p.peerId)[0]
    if (conn == null) throw new Error('d is not connected to b')
    const taken = until(b, ['peer:join'], () => b.presence.get(xId)?.online === true, 5_000, 'b to take the stream copy')
    await sendRecords(conn, presenceProtocol(mesh.id), [record])
    await taken
    release()
    await learnt
    expect(c.presence.get(xId)?.name).toBe('x')
  })
})
