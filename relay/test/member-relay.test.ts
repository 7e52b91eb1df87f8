/**
 * Members and a relay (SPEC.md §8.7, §12.1): a graceful stop hands queued DMs to the relay
 * before the node goes, and a member given the relay only as a bootstrap peer learns from its
 * identify answer that it is a relay and uses it as one (mailbox, reservation).
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshNode, type Mesh, type MeshNode, type MeshNodeInit } from '../../packages/node/src/index.js'
import { FAST, homeWithMesh, until } from '../../packages/node/test/helpers.js'
import { createLog, createRelay, type Relay } from '../src/index.js'

describe('members and their relay', () => {
  let home: string
  let mesh: Mesh
  let cleanup: () => Promise<void>
  let relay: Relay
  let relayAddr: string
  const nodes: MeshNode[] = []

  async function member(name: string, init: Partial<MeshNodeInit>): Promise<MeshNode> {
    const n = await createMeshNode({
      home,
      mesh: 'test',
      session: randomUUID(),
      name,
      listen: [],
      registry: false,
      control: false,
      presence: FAST,
      ...init
    })
    nodes.push(n)
    await n.start()
    return n
  }

  const mailboxOpen = async (n: MeshNode): Promise<void> => {
    await until(
      n.libp2p,
      ['peer:identify', 'connection:open', 'self:peer:update'],
      () => n.info().relays.some(r => r.id === relay.peerId && r.mailbox),
      15_000,
      `${n.self().name}'s mailbox stream`
    )
  }

  const seen = async (a: MeshNode, b: MeshNode, online = true): Promise<void> => {
    await until(
      a,
      ['peer:join', 'peer:update', 'peer:leave'],
      () => (a.presence.get(b.peerId)?.online === true) === online,
      15_000,
      `${a.self().name} to see ${b.self().name} ${online ? 'online' : 'offline'}`
    )
  }

  beforeAll(async () => {
    ;({ home, mesh, cleanup } = await homeWithMesh())
    relay = await createRelay({ data: join(home, 'relay'), mesh, listen: ['/ip4/127.0.0.1/tcp/0'], log: createLog('error') })
    await relay.start()
    relayAddr = relay.multiaddrs()[0] as string
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop({ flushMs: 0 }).catch(() => {})))
    await relay?.stop()
    await cleanup()
  })

  it('a member asks its relay for neither CRDT updates nor group history: the relay says it holds none (SPEC.md §6.2)', async () => {
    const n = await createMeshNode({
      home,
      mesh: 'test',
      session: randomUUID(),
      name: 'cid',
      listen: [],
      registry: false,
      control: false,
      presence: FAST,
      relays: [relayAddr]
    })
    nodes.push(n)
    const synced = new Promise<unknown>(resolve => {
      n.addEventListener('sync:connect', evt => {
        if (evt.detail.peer === relay.peerId) resolve(evt.detail)
      })
    })
    await n.start()
    expect(await synced).toEqual({ peer: relay.peerId, crdt: false, topics: [] })
  })

  it('a member behind a relay announces its relay address in its first record (SPEC.md §12.2)', async () => {
    const a = await member('eve', { relays: [relayAddr] })
    // the first record of fay that eve takes: signed at start, it would carry no address yet
    const first = new Promise<string[]>(resolve => {
      a.addEventListener('peer:join', e => {
        if (e.detail.name === 'fay') resolve(e.detail.addrs)
      })
    })
    const b = await member('fay', { relays: [relayAddr] })
    expect((await first).some(x => x.endsWith(`/p2p/${relay.peerId}/p2p-circuit/p2p/${b.peerId}`))).toBe(true)
  })

  it("a graceful stop right after a send waits for the relay: the DM is held on the sender's disk before the node is gone", async () => {
    const a = await member('ann', { relays: [relayAddr] })
    const bobSession = randomUUID()
    const b = await member('ben', { relays: [relayAddr], session: bobSession })
    await seen(a, b)
    await b.stop()
    await seen(a, b, false)
    await mailboxOpen(a)
    const [sent] = await a.mail.send(b.peerId, 'before I go')
    expect(sent?.status).toBe('pending')
    // no await between the send and the stop: the relay's `h` can only arrive during the stop
    await a.stop()
    // read the sender's store back without a relay: nothing can change it now
    const again = await member('ann', { session: a.key.session })
    expect((await again.mail.status(sent?.id as string))?.status).toBe('held')
    expect(again.queued).toBe(0)
    await again.stop()
    const back = await member('ben', { relays: [relayAddr], session: bobSession })
    await until(back, ['message:receive'], () => back.mail.inbox.unread === 1, 15_000, 'ben to receive')
    expect((await back.mail.check()).messages.map(m => m.body)).toEqual(['before I go'])
  })

  it('a member given the relay only as --bootstrap uses it as a relay: a reservation, and a DM for an offline peer is held, then delivered', async () => {
    // one with the relay's full address, one with a bare address (its id learnt on dial)
    const bare = relayAddr.replace(/\/p2p\/[^/]+$/, '')
    const a = await member('cleo', { bootstrap: [relayAddr] })
    const dSession = randomUUID()
    const d = await member('dan', { bootstrap: [bare], session: dSession })
    await Promise.all([mailboxOpen(a), mailboxOpen(d)])
    expect(a.relays()).toEqual([relayAddr])
    expect(d.relays()).toEqual([`${bare}/p2p/${relay.peerId}`])
    // listening through the relay: a circuit reservation, announced in presence
    await until(
      a.libp2p,
      ['self:peer:update'],
      () => a.multiaddrs().some(x => x.includes(`/p2p/${relay.peerId}/p2p-circuit`)),
      15_000,
      'cleo to listen through the relay'
    )
    await seen(a, d)
    await d.stop()
    await seen(a, d, false)
    const [sent] = await a.mail.send('dan', 'for when you are back')
    const id = sent?.id as string
    await until(a, ['message:status'], () => a.queued === 0, 15_000, 'the DM to be held')
    expect((await a.mail.status(id))?.status).toBe('held')
    await a.stop()
    const back = await member('dan', { bootstrap: [bare], session: dSession })
    await until(back, ['message:receive'], () => back.mail.inbox.unread === 1, 15_000, 'dan to receive')
    expect((await back.mail.check()).messages.map(m => m.id)).toEqual([id])
    // the sender returns and learns it was delivered (the receipt waited at the relay)
    const a2 = await createMeshNode({
      home,
      mesh: 'test',
      session: a.key.session,
      name: 'cleo',
      bootstrap: [relayAddr],
      listen: [],
      registry: false,
      control: false,
      presence: FAST
    })
    nodes.push(a2)
    let receipt = false
    a2.addEventListener('message:status', e => {
      if (e.detail.id === id && e.detail.status === 'delivered') receipt = true
    })
    await a2.start()
    await until(a2, ['message:status'], () => receipt, 15_000, 'the delivery receipt')
    expect((await a2.mail.status(id))?.status).toBe('delivered')
  })
})
