import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { decodeRecord } from '../src/presence/record.js'
import { homeWithMesh, startNode, until, untilAllSee } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

// the handlers gossipsub calls on a new subscriber and on a graft (SPEC.md §6.2)
type Hooks = { onSubscription: (e: unknown) => void; onGraft: (e: unknown) => void; republishPending: boolean; topic: string }
const hooks = (n: MeshNode): Hooks => n.presence as unknown as Hooks
const subscribed = (topic: string): CustomEvent =>
  new CustomEvent('subscription-change', { detail: { subscriptions: [{ topic, subscribe: true }] } })
const grafted = (topic: string): CustomEvent => new CustomEvent('gossipsub:graft', { detail: { topic } })

describe('presence republish on new connections (SPEC.md §6.2)', () => {
  // a heartbeat far away: every publish in the test is one the test caused
  const presence = { heartbeatMs: 600_000, ttlMs: 1_200_000, graceMs: 60_000 }

  it('a node whose record reached nobody republishes on a subscriber or a graft', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const alone = await startNode({ home, name: 'alone', presence })
    nodes.push(alone)
    const h = hooks(alone)
    expect(h.republishPending).toBe(false)
    h.onSubscription(subscribed(h.topic))
    expect(h.republishPending).toBe(true)
  })

  it('once its record reached a peer, a new subscriber or graft does not make it re-sign', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await startNode({ home, name: 'a', presence })
    const b = await startNode({ home, name: 'b', presence })
    nodes.push(a, b)
    await untilAllSee(nodes)
    // a record signed while a knows no subscriber is kept back for one (SPEC.md §6.2): wait
    // until a's gossipsub knows b subscribes, so the change below goes to gossip at once
    const pubsub = a.libp2p.services.pubsub
    await until(pubsub, ['subscription-change'], () => pubsub.getSubscribers(hooks(a).topic).length > 0, 10_000, 'b subscribed at a')
    // a change is published at once; b seeing it proves the publish reached a peer
    const seen = new Promise<void>(resolve => {
      const on = (e: Event): void => {
        if ((e as CustomEvent).detail.summary === 'ready') {
          b.removeEventListener('peer:update', on)
          resolve()
        }
      }
      b.addEventListener('peer:update', on)
    })
    await a.presence.update({ summary: 'ready' })
    await seen
    const h = hooks(a)
    // a debounced republish from the start-up grafts may still be pending: wait for none
    const bound = Date.now() + 10_000
    while (h.republishPending && Date.now() < bound) await new Promise(resolve => setImmediate(resolve))
    h.onSubscription(subscribed(h.topic))
    h.onGraft(grafted(h.topic))
    expect(h.republishPending).toBe(false)
  })

  it('a change or a republish asked for while the goodbye goes out does not outdate it: the last record signed is the goodbye and the peer sees us leave', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await startNode({ home, name: 'a', presence })
    const b = await startNode({ home, name: 'b', presence })
    nodes.push(b)
    await untilAllSee([a, b])
    const left = until([b], ['peer:leave'], () => b.presence.get(a.peerId)?.online === false, 10_000, 'a offline at b')
    const stopping = a.presence.stop()
    // what a heartbeat, a debounced republish or a status change would do in that second
    const late = a.presence.update({ summary: 'signed after the goodbye' })
    hooks(a).onSubscription(subscribed(hooks(a).topic))
    await Promise.all([stopping, late])
    expect(hooks(a).republishPending).toBe(false)
    expect(decodeRecord(a.presence.ownRecord() as Uint8Array).gone).toBe(true)
    await left
    await a.stop({ flushMs: 0 })
    expect(b.presence.get(a.peerId)?.online).toBe(false)
  })
})
