import { existsSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { copyFile, mkdir } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { dirname } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createInvite, createMesh, joinMesh, type MeshNode, paths } from '../src/index.js'
import { homeWithMesh, received, startNode, tempHome, until, untilAllSee } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function track(p: Promise<MeshNode>): Promise<MeshNode> {
  const n = await p
  nodes.push(n)
  return n
}

async function twoHomes(): Promise<{ a: string; b: string }> {
  const A = await homeWithMesh('team')
  const B = await tempHome()
  cleanups.push(A.cleanup, B.cleanup)
  await joinMesh(B.home, await createInvite(A.mesh))
  return { a: A.home, b: B.home }
}

describe('a mesh in one process', () => {
  it('three nodes sharing a home find each other with no flags', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    for (const name of ['alice', 'bob', 'carol']) await track(startNode({ home, name }))
    await untilAllSee(nodes)
    expect(
      nodes[0]
        ?.peers()
        .filter(p => p.online)
        .map(p => p.name)
        .sort()
    ).toEqual(['bob', 'carol'])
    expect(nodes[0]?.peers({ group: 'none' })).toEqual([])
  })

  it('presence carries role, groups, status and summary, and updates spread', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await track(startNode({ home, name: 'alice', role: 'lead', groups: [{ name: 'core', role: 'lead' }, { name: 'review' }] }))
    const b = await track(startNode({ home, name: 'bob' }))
    await untilAllSee([a, b])
    expect(b.presence.get(a.peerId)).toMatchObject({
      name: 'alice',
      role: 'lead',
      groups: [{ name: 'core', role: 'lead' }, { name: 'review' }],
      status: 'idle'
    })
    expect(b.peers({ group: '@review' }).map(p => p.name)).toEqual(['alice'])
    await a.setPresence({ status: 'working', summary: 'refactoring the parser' })
    await until(b, ['peer:update'], () => b.presence.get(a.peerId)?.summary === 'refactoring the parser', 5_000, 'the update')
    expect(b.presence.get(a.peerId)?.status).toBe('working')
  })

  it('two homes joined by invite meet through --bootstrap, with and without /p2p/', async () => {
    const { a, b } = await twoHomes()
    const n1 = await track(startNode({ home: a, mesh: 'team', name: 'one' }))
    const addr = n1.multiaddrs()[0] ?? ''
    const bare = addr.replace(/\/p2p\/.*$/, '')
    const n2 = await track(startNode({ home: b, mesh: 'team', name: 'two', bootstrap: [addr] }))
    const n3 = await track(startNode({ home: b, mesh: 'team', name: 'three', registry: false, bootstrap: [bare] }))
    await untilAllSee([n1, n2, n3])
  })

  // mDNS multicasts through a non-loopback interface; without one it cannot work at all
  const lanUp = Object.values(networkInterfaces())
    .flat()
    .some(i => i?.family === 'IPv4' && !i.internal)
  it.skipIf(!lanUp)('two homes on one LAN find each other with mDNS, no registry and no bootstrap', async () => {
    const { a, b } = await twoHomes()
    const lan = { mdns: true, registry: false, listen: ['/ip4/0.0.0.0/tcp/0'] }
    const n1 = await track(startNode({ home: a, mesh: 'team', name: 'one', ...lan }))
    const n2 = await track(startNode({ home: b, mesh: 'team', name: 'two', ...lan }))
    await untilAllSee([n1, n2], 20_000)
  })

  it.skipIf(!lanUp)('two homes of five on one LAN, registry and mDNS: each home a tree, and the homes find each other', async () => {
    const { a, b } = await twoHomes()
    const lan = { mdns: true, listen: ['/ip4/0.0.0.0/tcp/0'] }
    const all: MeshNode[] = []
    for (let i = 0; i < 5; i++) {
      all.push(await track(startNode({ home: a, mesh: 'team', name: `a${i}`, ...lan })))
      all.push(await track(startNode({ home: b, mesh: 'team', name: `b${i}`, ...lan })))
    }
    // discovery dials no peer of the node's own home (the registry keeps those, SPEC.md §5.3),
    // only the other home's, while a node has fewer than two peers
    await untilAllSee(all, 20_000)
  })

  it('a stranger without the invite cannot complete a connection', async () => {
    const { home, cleanup } = await homeWithMesh('team')
    cleanups.push(cleanup)
    const member = await track(startNode({ home, mesh: 'team', name: 'member' }))
    const other = await tempHome()
    cleanups.push(other.cleanup)
    await createMesh(other.home, 'team') // same name, different secrets
    const stranger = await track(startNode({ home: other.home, mesh: 'team', name: 'stranger', registry: false }))
    const target = multiaddr(member.multiaddrs()[0] ?? '')
    await expect(stranger.libp2p.dial(target, { signal: AbortSignal.timeout(8_000) })).rejects.toThrow()
    expect(member.libp2p.getConnections().length).toBe(0)
    expect(stranger.libp2p.getConnections().length).toBe(0)
    expect(member.peers()).toEqual([])
  })

  it('keeps its PeerId across restarts and remembers peers as offline', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const session = randomUUID()
    const a = await startNode({ home, session, name: 'alice' })
    const b = await track(startNode({ home, name: 'bob' }))
    await untilAllSee([a, b])
    const id = a.peerId
    await a.stop()
    const again = await track(startNode({ home, session, name: 'alice', registry: false, control: false }))
    expect(again.peerId).toBe(id)
    const remembered = again.presence.get(b.peerId)
    expect(remembered?.name).toBe('bob')
  })

  it('a second node with the same session key replaces the first (same home)', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const session = randomUUID()
    const watcher = await track(startNode({ home, name: 'watcher' }))
    const old = await startNode({ home, session, name: 'dup' })
    await untilAllSee([watcher, old])
    const stopped = new Promise<string>(resolve => {
      old.addEventListener('node:stopped', e => {
        resolve(e.detail.reason)
      })
    })
    const leaves: string[] = []
    watcher.addEventListener('peer:leave', e => {
      leaves.push(e.detail.id)
    })
    const fresh = await track(startNode({ home, session, name: 'dup' }))
    expect(await stopped).toBe('replaced')
    expect(old.running).toBe(false)
    await until(
      watcher,
      ['peer:update', 'peer:join'],
      () => watcher.presence.get(fresh.peerId)?.incarnation === fresh.presence.incarnation,
      10_000,
      'the new incarnation'
    )
    expect(watcher.presence.get(fresh.peerId)?.online).toBe(true)
    expect(leaves).toEqual([])
    // the old one's stop left the new one's sockets in place (same paths: same PeerId)
    expect(existsSync(fresh.registryControlPath())).toBe(true)
    expect(existsSync(fresh.mail.dm.local?.path ?? '')).toBe(true)
    const got = received(fresh, m => m.body === 'to the new incarnation')
    await watcher.mail.send(fresh.peerId, 'to the new incarnation')
    await got
  })

  it('a second node with the same session key replaces the first across machines', async () => {
    const { a, b } = await twoHomes()
    const session = randomUUID()
    const hub = await track(startNode({ home: a, mesh: 'team', name: 'hub' }))
    const old = await startNode({ home: a, mesh: 'team', session, name: 'dup' })
    await untilAllSee([hub, old])
    // the same session key on another machine: copy the key file to the second home
    const src = paths.sessionKey(a, 'team', session)
    const dst = paths.sessionKey(b, 'team', session)
    await mkdir(dirname(dst), { recursive: true, mode: 0o700 })
    await copyFile(src, dst)
    const stopped = new Promise<string>(resolve => {
      old.addEventListener('node:stopped', e => {
        resolve(e.detail.reason)
      })
    })
    const fresh = await track(startNode({ home: b, mesh: 'team', session, name: 'dup', bootstrap: [hub.multiaddrs()[0] ?? ''] }))
    expect(fresh.peerId).toBe(old.peerId)
    expect(await stopped).toBe('replaced')
    await until(
      hub,
      ['peer:update'],
      () => hub.presence.get(fresh.peerId)?.incarnation === fresh.presence.incarnation,
      10_000,
      'the new incarnation at the hub'
    )
  })

  it('a goodbye is a prompt leave; a silent loss leaves after the grace', async () => {
    const { home, cleanup } = await homeWithMesh()
    cleanups.push(cleanup)
    const a = await track(startNode({ home, name: 'alice' }))
    const b = await startNode({ home, name: 'bob' })
    const c = await startNode({ home, name: 'carol' })
    await untilAllSee([a, b, c])
    await b.stop()
    await until(a, ['peer:leave'], () => a.presence.get(b.peerId)?.online === false, 2_000, 'bob to leave')
    // carol vanishes without a word: stop presence silently, then drop the transport
    await c.presence.stop({ goodbye: false })
    const lostAt = Date.now()
    await c.libp2p.stop()
    await until(a, ['peer:leave'], () => a.presence.get(c.peerId)?.online === false, 10_000, 'carol to leave')
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(a.presence.timings.graceMs - 100)
    await c.store.close()
  })
})
