/**
 * The registry of running nodes (SPEC.md §5.1): `listRunning` reads each entry once and then
 * only the files that changed, so every rewrite, removal and death must still show.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { paths } from '../src/home.js'
import { listRunning, type RegistryEntry, register, registryFile, unregister } from '../src/discovery/registry.js'
import { homeWithMesh } from './helpers.js'

const entry = (peerId: string, over: Partial<RegistryEntry> = {}): RegistryEntry => ({
  v: 1,
  peerId,
  pid: process.pid,
  mesh: 'test',
  session: `s-${peerId}`,
  name: peerId,
  kind: 'daemon',
  addrs: ['/ip4/127.0.0.1/tcp/1'],
  control: `/tmp/${peerId}.sock`,
  incarnation: 1,
  startedAt: 1,
  ...over
})

describe('registry', () => {
  let home: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ;({ home, cleanup } = await homeWithMesh())
  })
  afterEach(async () => {
    await cleanup()
  })

  it('sees every rewrite, removal and dead pid after a first read', async () => {
    await register(home, entry('a', { startedAt: 2 }))
    await register(home, entry('b', { startedAt: 1 }))
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['b', 'a'])

    // a rewrite of the same size (a new incarnation) is read again
    await register(home, entry('a', { startedAt: 2, incarnation: 2 }))
    expect((await listRunning(home, 'test')).find(e => e.peerId === 'a')?.incarnation).toBe(2)

    await unregister(home, 'test', 'b', 1)
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['a'])

    // an entry whose process is gone is dropped and its file removed
    const child = spawn(process.execPath, ['-e', '0'])
    await once(child, 'exit')
    await register(home, entry('c', { pid: child.pid as number }))
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['a'])
    expect(await readdir(paths.run(home, 'test'))).not.toContain('c.json')

    // a file that is not an entry is skipped, and taken once it is one
    await writeFile(registryFile(home, 'test', 'd'), '{"v":1', { mode: 0o600 })
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['a'])
    await register(home, entry('d', { startedAt: 3 }))
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['a', 'd'])
  })

  it('keeps separate meshes apart', async () => {
    await register(home, entry('a'))
    await register(home, entry('x', { mesh: 'other' }))
    expect((await listRunning(home, 'test')).map(e => e.peerId)).toEqual(['a'])
    expect((await listRunning(home, 'other')).map(e => e.peerId)).toEqual(['x'])
    expect(join(paths.run(home, 'other'), 'x.json')).toBe(registryFile(home, 'other', 'x'))
  })
})
