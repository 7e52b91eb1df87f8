/**
 * A home of more than four nodes is a tree (SPEC.md §5.1): each node keeps one older registry
 * peer, and discovery leaves the home's peers to the registry. A node whose older peer dies
 * (its process killed: its sockets close, its registry entry stays until someone sees the dead
 * pid) dials again at once, not at the next periodic scan. Once settled, a node keeps a second
 * older peer, so one that hangs with its sockets open (a suspended session) cuts nobody off.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { FSWatcher } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import type { PeerId } from '@libp2p/interface'
import { afterAll, describe, expect, it } from 'vitest'
import { registryFile } from '../src/discovery/registry.js'
import { startedBefore } from '../src/discovery/dialer.js'
import type { MeshNode } from '../src/index.js'
import { homeWithMesh, startNode, until, untilAllSee, untilSubscribed } from './helpers.js'

const connected = (a: MeshNode, b: MeshNode): boolean => a.libp2p.getConnections(b.libp2p.peerId).length > 0

describe('registry tree', () => {
  const nodes: MeshNode[] = []
  let cleanup: (() => Promise<void>) | undefined
  afterAll(async () => {
    for (const n of nodes.reverse()) await n.stop().catch(() => {})
    await cleanup?.()
  })

  it('orders entries started in the same ms by PeerId, so two of them never each take the other as older', () => {
    const a = { startedAt: 5, peerId: '12D3KooWA' }
    const b = { startedAt: 5, peerId: '12D3KooWB' }
    expect(startedBefore(a, b)).toBe(true)
    expect(startedBefore(b, a)).toBe(false)
    expect(startedBefore(a, a)).toBe(false)
    expect(startedBefore({ startedAt: 4, peerId: '12D3KooWZ' }, a)).toBe(true)
  })

  it('fully connects a home of four; a fifth node keeps one older peer, and dials the others at once when it dies', async () => {
    const h = await homeWithMesh()
    cleanup = h.cleanup
    for (const name of ['a', 'b', 'c', 'd', 'e']) nodes.push(await startNode({ home: h.home, name, mdns: false, dht: false }))
    const e = nodes[4] as MeshNode
    const four = nodes.slice(0, 4)
    // no periodic registry scan and no registry watch (a killed process leaves its entry as it
    // was; the test rewrites it): only the dead peer's disconnect may bring its child back
    for (const n of nodes) {
      const d = (n as unknown as { dialer: { timer: NodeJS.Timeout; watcher: FSWatcher } }).dialer
      clearInterval(d.timer)
      d.watcher.close()
    }
    await untilAllSee(nodes)
    // the first four each dialled every older one (the newest of them found four entries)
    for (const [i, x] of four.entries()) for (const y of four.slice(0, i)) expect(connected(x, y)).toBe(true)
    // e found five and dialled one
    const parents = four.filter(n => connected(e, n))
    expect(parents).toHaveLength(1)
    const parent = parents[0] as MeshNode
    const others = four.filter(n => n !== parent)

    // discovery leaves the home to the registry: another node's addresses reaching e's peer
    // store (as presence or mDNS would put them there) start no dial, though e has one peer only
    const dialer = (e as unknown as { dialer: { inflight: Set<string> } }).dialer
    const other = others[0] as MeshNode
    await e.libp2p.peerStore.merge(other.libp2p.peerId, { multiaddrs: other.libp2p.getMultiaddrs() })
    expect(dialer.inflight.has(other.libp2p.peerId.toString())).toBe(false)
    expect(connected(e, other)).toBe(false)

    // the parent dies: its entry now names a dead process, and its sockets close
    const dead = spawn(process.execPath, ['-e', '0'])
    await once(dead, 'exit')
    const file = registryFile(h.home, 'test', parent.libp2p.peerId.toString())
    const entry = JSON.parse(await readFile(file, 'utf8')) as { pid: number }
    await writeFile(file, JSON.stringify({ ...entry, pid: dead.pid }), { mode: 0o600 })
    await parent.libp2p.stop()

    // a home of four again: e dials the three left
    await until(e.libp2p, ['connection:open'], () => others.every(n => connected(e, n)), 10_000, 'e to dial the other three')
  })

  it('keeps a second older peer once settled: a node whose first one hangs still gets what is published', async () => {
    const h = await homeWithMesh()
    const six: MeshNode[] = []
    try {
      for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) six.push(await startNode({ home: h.home, name, mdns: false, dht: false }))
      const f = six[5] as MeshNode
      await untilAllSee(six)
      // f is the newest of a home of six: it keeps one older peer, and nobody dials it
      const parents = six.filter(n => n !== f && connected(f, n))
      expect(parents).toHaveLength(1)
      const hung = parents[0] as MeshNode
      // what SETTLE_MS brings (a timer of a minute; called here)
      for (const n of six) (n as unknown as { dialer: { settle: () => void } }).dialer.settle()
      const older = (n: MeshNode): number => six.slice(0, six.indexOf(n)).filter(o => connected(n, o)).length
      await until(
        six.map(n => n.libp2p),
        ['connection:open'],
        () => six.slice(2).every(n => older(n) >= 2),
        10_000,
        'every node from the third on to keep two older peers'
      )
      // and gossipsub at both ends of each new connection knows the other is on @all's topic (a
      // message published on a connection younger than that reaches nobody through it: §9.4)
      const all = f.mail.groups.topicOf('*')
      for (const [i, n] of six.entries())
        for (const [j, o] of six.slice(0, i).entries()) {
          if (!connected(n, o)) continue
          await untilSubscribed(n, o, all, `node ${j} on @all at node ${i}`)
          await untilSubscribed(o, n, all, `node ${i} on @all at node ${j}`)
        }
      // `hung` stops taking gossip (as a stopped process would) and keeps its connections
      const pubsub = hung.libp2p.services.pubsub as unknown as { handleReceivedRpc: (from: PeerId, rpc: unknown) => Promise<void> }
      pubsub.handleReceivedRpc = async () => {}
      let body: string | undefined
      f.addEventListener('message:receive', evt => {
        if (evt.detail.group === '*') body = evt.detail.body
      })
      const sender = six.find(n => n !== hung && n !== f) as MeshNode
      await sender.mail.send('@all', 'around the hung one')
      // with f's one older peer hung, only a resync (15 s ± 50 %) or the ping timeout would bring it
      await until(f, ['message:receive'], () => body != null, 5_000, 'the message at f within 5 s')
      expect(body).toBe('around the hung one')
    } finally {
      for (const n of six.reverse()) await n.stop().catch(() => {})
      await h.cleanup()
    }
  })
})
