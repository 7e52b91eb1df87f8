/**
 * One sender's DMs reach the recipient in send order while they change path (SPEC.md §12.4),
 * with real members and a real relay on loopback. The race the relay soak hit a few times in
 * 100,000 DMs is forced here: two disk writes are held back (a slow disk, the only thing this
 * test controls) so the windows that the scheduler opens by chance stay open.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshNode, type MeshNode } from '../../packages/node/src/index.js'
import type { BatchOp, GroupCommit } from '../../packages/node/src/store/commit.js'
import { FAST, homeWithMesh, pollUntil, until } from '../../packages/node/test/helpers.js'
import { createLog, createRelay, type Relay } from '../src/index.js'

/**
 * Hold back a node's synced writes that touch a key ending in one of `ids` (a slow disk for
 * those records): `hit` resolves when the first such write is waiting, `release()` lets all go.
 */
function slowDisk(node: MeshNode, keys: (key: string) => boolean): { hit: Promise<void>; release: () => void } {
  const commit = (node as unknown as { commit: GroupCommit }).commit
  const write = commit.write.bind(commit)
  let open!: () => void
  const gate = new Promise<void>(resolve => {
    open = resolve
  })
  let hit!: () => void
  const hitP = new Promise<void>(resolve => {
    hit = resolve
  })
  commit.write = async (ops: BatchOp[]): Promise<void> => {
    if (!ops.some(op => typeof op.key === 'string' && keys(op.key))) return write(ops)
    hit()
    await gate
    return write(ops)
  }
  return { hit: hitP, release: open }
}

describe('order per sender across the direct and mailbox paths', () => {
  let cleanup: () => Promise<void>
  let relay: Relay
  const nodes: MeshNode[] = []

  beforeAll(async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    relay = await createRelay({ data: join(h.home, 'relay'), mesh: h.mesh, listen: ['/ip4/127.0.0.1/tcp/0'], log: createLog('error') })
    await relay.start()
    const relayAddr = relay.multiaddrs()[0] as string
    for (const name of ['alice', 'bob', 'carol']) {
      const n = await createMeshNode({
        home: h.home,
        mesh: 'test',
        session: randomUUID(),
        name,
        listen: [],
        relays: [relayAddr],
        registry: false,
        control: false,
        presence: FAST
      })
      await n.start()
      nodes.push(n)
    }
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await relay?.stop()
    await cleanup?.()
  })

  it("a DM sent while the relay's answer for an earlier one is being recorded does not overtake it on a direct connection", async () => {
    const [alice, bob, carol] = nodes as [MeshNode, MeshNode, MeshNode]
    const online = (a: MeshNode, b: MeshNode): boolean => a.presence.get(b.peerId)?.online === true
    await until(
      nodes,
      ['peer:join', 'peer:update'],
      () => online(alice, bob) && online(alice, carol),
      15_000,
      'alice to see bob and carol online'
    )
    const arrived: string[] = []
    bob.addEventListener('message:receive', e => {
      arrived.push(e.detail.body)
    })

    // from here the test decides who is connected: discovery dials no one
    for (const n of nodes) n.dialer.stop()
    // not connected to bob or carol: the first DM goes to the relay's mailbox, in one deposit with carol's
    await alice.libp2p.hangUp(bob.libp2p.peerId)
    await alice.libp2p.hangUp(carol.libp2p.peerId)
    const ids = new Map<string, string>()
    // the relay answers both deposits in one `h` frame; recording carol's is slow on alice's disk
    const aliceDisk = slowDisk(alice, k => k === `h!${ids.get('carol') ?? '-'}`)
    // and bob's disk is slow to store the first DM, so it is still on its way when the next comes
    const bobDisk = slowDisk(bob, k => k.endsWith(`!${ids.get('first') ?? '-'}`))
    const sent = await alice.mail.send([carol.peerId, bob.peerId], 'first')
    for (const s of sent) ids.set(s.to === carol.peerId ? 'carol' : 'first', s.id)
    expect(ids.size).toBe(2)
    await within(Promise.all([aliceDisk.hit, bobDisk.hit]), 20_000, "the relay's answer at alice and the first DM at bob")

    // the relay holds the first DM (alice has its `h`), bob has not stored it; now alice and bob connect
    await within(alice.dialer.connect(bob.peerId), 20_000, 'alice to connect to bob')
    const [second] = await alice.mail.send('bob', 'second')
    // the second DM reaches bob: over the connection (stored at once), or through the relay
    // (then it waits behind the first in bob's mailbox intake)
    const mailIn = bob.mail.dm.mailbox?.stats.received ?? 0
    await pollUntil(
      () => arrived.includes('second') || (bob.mail.dm.mailbox?.stats.received ?? 0) > mailIn,
      15_000,
      'the second DM to reach bob'
    )
    bobDisk.release()
    aliceDisk.release()
    await until(bob, ['message:receive'], () => arrived.length >= 2, 15_000, 'bob to receive both')
    expect(arrived).toEqual(['first', 'second'])
    // what bob's model is shown: alice's messages, oldest first
    expect((await bob.mail.check({ markRead: false })).messages.filter(m => m.from === alice.peerId).map(m => m.body)).toEqual([
      'first',
      'second'
    ])
    expect((await alice.mail.status(ids.get('first') as string))?.times.held).toBeTypeOf('number')
    expect(second?.id).toBeTypeOf('string')
  }, 90_000)
})

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`timed out waiting for ${what}`))
        }, ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}
