/**
 * File reservations between real nodes on loopback (libp2p, LevelDB): a reservation made in one
 * clone reaches every peer and stops edits in another clone of the same repository; presence
 * shows it; a conflicting reservation is refused; once the holder leaves, it no longer counts.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { checkPaths, listReservations, releaseFiles, reserveFiles } from '../src/control/reservation-methods.js'
import { until, startMesh } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 })))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function clone(remote: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-rsv-'))
  cleanups.push(async () => rm(d, { recursive: true, force: true }))
  execFileSync('git', ['-C', d, 'init', '-q', '-b', 'main'])
  execFileSync('git', ['-C', d, 'remote', 'add', 'origin', remote])
  return d
}

async function mesh(names: string[]): Promise<MeshNode[]> {
  return (await startMesh({ nodes, cleanups }, names)).nodes
}

const sees = (n: MeshNode, holder: string, count: number) => async (): Promise<void> =>
  until(
    [n.data.reservations],
    ['reservation:change'],
    () => n.data.reservations.forPeer(holder).length === count,
    15_000,
    `${count} reservation(s) of ${holder.slice(-6)} at ${n.self().name}`
  )

describe('file reservations across nodes', () => {
  it('replicate to every peer, block edits in another clone, show in presence, refuse a conflict, and stop counting when the holder leaves', async () => {
    const [a, b, c] = (await mesh(['alice', 'bob', 'carol'])) as [MeshNode, MeshNode, MeshNode]
    const cloneA = await clone('git@example.com:team/app.git')
    const cloneB = await clone('https://bob:token@example.com/team/app')
    const r = await reserveFiles(a, { cwd: cloneA, globs: ['src/auth/**'], reason: 'rewriting the session code', ttlMs: 600_000 })
    expect(r.reservation).toMatchObject({ holder: a.peerId, repo: 'example.com/team/app', branch: 'main', mode: 'exclusive' })
    await Promise.all([sees(b, a.peerId, 1)(), sees(c, a.peerId, 1)()])

    const blocked = await checkPaths(b, { paths: [join(cloneB, 'src/auth/login.ts'), join(cloneB, 'README.md')] })
    expect(blocked.map(x => [x.rel, x.by.holder, x.by.name, x.by.reason])).toEqual([
      ['src/auth/login.ts', a.peerId, 'alice', 'rewriting the session code']
    ])
    expect(await checkPaths(a, { paths: [join(cloneA, 'src/auth/login.ts')] })).toEqual([])
    // presence: who is touching src/auth anywhere? one call
    expect(c.peers().find(p => p.id === a.peerId)?.reservations).toEqual([
      {
        repo: 'example.com/team/app',
        branch: 'main',
        globs: ['src/auth/**'],
        mode: 'exclusive',
        reason: 'rewriting the session code',
        expiresAt: r.reservation.expiresAt
      }
    ])
    expect((await listReservations(c, { path: 'src/auth' })).map(x => x.holder)).toEqual([a.peerId])
    expect(await listReservations(c, { path: 'docs' })).toEqual([])
    expect((await listReservations(b, { path: join(cloneB, 'src/auth/token.ts') })).map(x => x.holder)).toEqual([a.peerId])

    await expect(reserveFiles(b, { cwd: cloneB, globs: ['src/auth/token.ts'], mode: 'shared' })).rejects.toThrow(
      /reserved exclusively by "alice"/
    )
    await reserveFiles(b, { cwd: cloneB, globs: ['docs/**'], mode: 'shared', reason: 'docs pass' })
    await sees(a, b.peerId, 1)()

    // release, and the others see it go
    expect((await releaseFiles(a, { cwd: cloneA })).released).toBe(1)
    await sees(b, a.peerId, 0)()
    expect(await checkPaths(b, { paths: [join(cloneB, 'src/auth/login.ts')] })).toEqual([])

    // the holder leaves (goodbye): its reservation stops counting at once, though its entry stays
    await reserveFiles(c, { cwd: cloneB, globs: ['src/db'], reason: 'migration' })
    await sees(b, c.peerId, 1)()
    nodes.splice(nodes.indexOf(c), 1)
    const left = until([b], ['peer:leave'], () => b.presence.get(c.peerId)?.online === false, 15_000, 'carol offline at bob')
    await c.stop({ flushMs: 0 })
    await left
    expect(b.data.reservations.forPeer(c.peerId)).toEqual([])
    expect(await checkPaths(b, { paths: [join(cloneB, 'src/db/schema.sql')] })).toEqual([])
    await reserveFiles(b, { cwd: cloneB, globs: ['src/db/**'] })
  }, 60_000)

  it('a holder that vanishes without a goodbye (a crash) stops counting once presence gives up on it', async () => {
    const [a, b] = (await mesh(['alice', 'bob'])) as [MeshNode, MeshNode]
    const repo = await clone('git@example.com:team/app.git')
    await reserveFiles(a, { cwd: repo, globs: ['src/**'], reason: 'big refactor' })
    await sees(b, a.peerId, 1)()
    expect(await checkPaths(b, { paths: [join(repo, 'src/a.ts')] })).toHaveLength(1)
    nodes.splice(nodes.indexOf(a), 1)
    const gone = until([b], ['peer:leave'], () => b.presence.get(a.peerId)?.online === false, 15_000, 'alice offline at bob')
    await a.presence.stop({ goodbye: false })
    await a.libp2p.stop()
    await gone
    expect(await checkPaths(b, { paths: [join(repo, 'src/a.ts')] })).toEqual([])
    expect((await reserveFiles(b, { cwd: repo, globs: ['src/**'] })).reservation.holder).toBe(b.peerId)
    await a.store.close()
  }, 60_000)
})
