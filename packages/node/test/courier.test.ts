/**
 * Delivery survives the sender (SPEC.md §8.7): a session that stops with a DM its recipient
 * cannot take yet leaves it to a courier on the same store, which delivers it when the
 * recipient returns; a newer incarnation of the session takes over from a courier at once.
 */
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type CourierOutcome, createMeshNode, DEFAULT_FLUSH_MS, listRunning, type MeshNode, paths, runCourier } from '../src/index.js'
import { FAST, homeWithMesh, until, untilAllSee } from './helpers.js'

describe('courier', () => {
  let home: string
  let cleanup: () => Promise<void>
  const nodes: MeshNode[] = []
  const couriers: Array<{ stop: AbortController; done: Promise<CourierOutcome> }> = []

  beforeEach(async () => {
    ;({ home, cleanup } = await homeWithMesh())
  })
  afterEach(async () => {
    for (const c of couriers) c.stop.abort()
    await Promise.all(couriers.splice(0).map(async c => c.done.catch(() => {})))
    await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 }).catch(() => {})))
    await cleanup()
  })

  async function node(name: string, session: string = randomUUID()): Promise<MeshNode> {
    const n = await createMeshNode({ home, mesh: 'test', session, name, presence: FAST })
    nodes.push(n)
    await n.start()
    return n
  }

  /** A courier for `n`'s session, as `claudemesh courier` runs it; resolves once it carries DMs (or ended). */
  async function courier(
    n: MeshNode,
    incarnation = n.presence.incarnation
  ): Promise<{ queued: Promise<number>; done: Promise<CourierOutcome> }> {
    const stop = new AbortController()
    let started!: (q: number) => void
    const queued = new Promise<number>(resolve => {
      started = resolve
    })
    const done = runCourier(
      { home, mesh: 'test', session: n.key.session, name: n.self().name, presence: FAST, courier: { incarnation } },
      { signal: stop.signal, onStart: started, checkMs: 200 }
    )
    couriers.push({ stop, done })
    void done.then(
      () => {
        started(-1)
      },
      () => {
        started(-1)
      }
    )
    return { queued, done }
  }

  /** alice and bob meet, bob leaves, alice sends him a DM that stays pending. */
  async function aliceWithDmForAbsentBob(): Promise<{ alice: MeshNode; bobSession: string; id: string }> {
    const bobSession = randomUUID()
    const bob = await node('bob', bobSession)
    const alice = await node('alice')
    await untilAllSee([alice, bob])
    await bob.stop()
    await until(alice, ['peer:leave'], () => alice.presence.get(bob.peerId)?.online === false, 10_000, 'bob to leave')
    const [sent] = await alice.mail.send('bob', 'while you were out')
    expect(sent?.status).toBe('pending')
    return { alice, bobSession, id: sent?.id as string }
  }

  it('carries a DM left queued by a stopped session to its recipient when he returns, then exits', async () => {
    const { alice, bobSession, id } = await aliceWithDmForAbsentBob()
    // bob is gone and there is no relay: nothing could move, so the stop does not wait out its flush
    const t0 = Date.now()
    await alice.stop()
    expect(Date.now() - t0).toBeLessThan(DEFAULT_FLUSH_MS)
    const c = await courier(alice)
    expect(await c.queued).toBe(1)
    // the courier is registered as such, under alice's key and name, and says it is pending
    const entry = (await listRunning(home, 'test')).find(e => e.peerId === alice.peerId)
    expect(entry).toMatchObject({ kind: 'courier', name: 'alice', incarnation: alice.presence.incarnation })
    const got = new Promise<string>(resolve => {
      void node('bob', bobSession).then(bob => {
        bob.addEventListener('message:receive', e => {
          resolve(`${e.detail.id} ${e.detail.body} ${e.detail.from}`)
        })
      })
    })
    expect(await got).toBe(`${id} while you were out ${alice.peerId}`)
    expect(await c.done).toBe('done')
    expect((await listRunning(home, 'test')).some(e => e.kind === 'courier')).toBe(false)
    // the session comes back and reads the truth from its store
    const again = await node('alice', alice.key.session)
    expect((await again.mail.status(id))?.status).toBe('delivered')
  })

  it('a courier announces no presence: peers still see the stopped session offline', async () => {
    const { alice } = await aliceWithDmForAbsentBob()
    const carol = await node('carol')
    await until(carol, ['peer:join', 'peer:update'], () => carol.presence.get(alice.peerId) != null, 10_000, 'carol to know alice')
    await alice.stop()
    await until(carol, ['peer:leave', 'peer:update'], () => carol.presence.get(alice.peerId)?.online === false, 10_000, 'alice to leave')
    const c = await courier(alice)
    expect(await c.queued).toBe(1)
    // carol is on this home: the courier and carol connect (registry), and she learns nothing new of alice
    await until(
      carol.libp2p,
      ['connection:open'],
      () => carol.libp2p.getConnections().some(x => x.remotePeer.toString() === alice.peerId),
      10_000,
      'the courier to connect'
    )
    expect(carol.presence.get(alice.peerId)?.online).toBe(false)
  })

  it('a newer incarnation takes over from a running courier, and then carries the DM itself', async () => {
    const { alice, bobSession, id } = await aliceWithDmForAbsentBob()
    await alice.stop()
    const c = await courier(alice)
    expect(await c.queued).toBe(1)
    const t0 = Date.now()
    const again = await node('alice', alice.key.session)
    expect(await c.done).toBe('replaced')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(again.queued).toBe(1)
    const bob = await node('bob', bobSession)
    await until(bob, ['message:receive'], () => bob.mail.inbox.unread > 0, 15_000, 'bob to receive')
    expect((await bob.mail.check()).messages.map(m => m.id)).toEqual([id])
  })

  it('a courier is not started for a session whose newer incarnation runs, nor when nothing is left', async () => {
    const { alice, bobSession } = await aliceWithDmForAbsentBob()
    await alice.stop()
    const again = await node('alice', alice.key.session)
    expect(await (await courier(alice)).done).toBe('superseded')
    // the queue empties (bob returns and takes the DM), then the session stops: nothing to carry
    const bob = await node('bob', bobSession)
    await until(again, ['message:status'], () => again.queued === 0, 15_000, 'the DM to be delivered')
    await again.stop()
    expect(await (await courier(again)).done).toBe('nothing')
    expect(bob.mail.inbox.unread).toBe(1)
  })

  it('a session started while its courier waits for the store gets the store: the courier yields either way', async () => {
    const { alice } = await aliceWithDmForAbsentBob()
    // the courier starts while alice still holds the store, as when a stop spawns it
    const c = await courier(alice)
    const again = await node('alice', alice.key.session)
    expect(['superseded', 'replaced']).toContain(await c.done)
    expect(again.running).toBe(true)
    expect(again.queued).toBe(1)
  })

  it('a courier whose session key is removed from the home exits', async () => {
    const { alice } = await aliceWithDmForAbsentBob()
    await alice.stop()
    const c = await courier(alice)
    expect(await c.queued).toBe(1)
    await rm(paths.sessionKey(home, 'test', alice.key.session))
    expect(await c.done).toBe('orphaned')
  })
})
