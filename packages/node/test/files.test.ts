import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { MeshNode } from '../src/index.js'
import { blobRoot } from '../src/files/blobs.js'
import { received, startNode, untilAllSee, startMesh } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop()))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function mesh(
  names: string[],
  extra: Record<string, Partial<Parameters<typeof startNode>[0]>> = {}
): Promise<{ home: string; nodes: MeshNode[] }> {
  return startMesh({ nodes, cleanups }, names, name => extra[name] ?? {})
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const idIn = (body: string): string => /id ([0-9a-f]{64})/.exec(body)?.[1] ?? ''

async function randomFile(home: string, name: string, bytes: number): Promise<{ path: string; data: Buffer }> {
  const data = randomBytes(bytes)
  const path = join(home, name)
  await writeFile(path, data)
  return { path, data }
}

describe('shared files', () => {
  it('shares a file to a peer: announced in the inbox, fetched over loopback, hash matches, pinned by both', async () => {
    const {
      home,
      nodes: [a, b]
    } = await mesh(['alice', 'bob'])
    if (a == null || b == null) throw new Error('nodes')
    const { path, data } = await randomFile(home, 'report.bin', 5 * 1024 * 1024 + 123)
    const got = received(b)
    const { file, sent } = await a.files.share(path, 'bob')
    expect(file).toMatchObject({ name: 'report.bin', size: data.byteLength, chunks: 6, have: 6, state: 'complete', role: 'shared' })
    expect(sent[0]).toMatchObject({ to: b.peerId })
    const m = await got
    expect(m.from).toBe(a.peerId)
    expect(m.body).toContain('"report.bin"')
    expect(idIn(m.body)).toBe(file.id)
    const r = await b.files.get(file.id, join(home, 'out'), { cwd: home })
    expect(r.path).toBe(join(home, 'out'))
    expect(sha(await readFile(r.path))).toBe(sha(data))
    expect(r.fetchedBytes).toBeGreaterThan(data.byteLength)
    expect(r.holders).toEqual([a.peerId])
    expect(b.files.list()).toEqual([
      expect.objectContaining({ id: file.id, role: 'fetched', state: 'complete', from: a.peerId, fromName: 'alice', have: 6 })
    ])
    // a second get of a complete file fetches nothing; an existing destination is refused
    await expect(b.files.get(file.id, r.path)).rejects.toThrow(/already exists/)
    const again = await b.files.get(file.id, join(home, 'out2'))
    expect(again.fetchedBytes).toBe(0)
  })

  it('refuses a corrupted chunk, keeps what verified, and resumes from an honest holder', async () => {
    const {
      home,
      nodes: [a, b, c]
    } = await mesh(['alice', 'bob', 'carol'])
    if (a == null || b == null || c == null) throw new Error('nodes')
    const { path, data } = await randomFile(home, 'data.bin', 3 * 1024 * 1024)
    const { file } = await a.files.share(path, '@all')
    // carol fetches an honest copy, then alice's chunk 1 is corrupted on disk
    await c.files.get(file.id, join(home, 'carol.bin'))
    const chunk = join(blobRoot(home, 'test', a.key.session), file.id, '000001')
    const bytes = await readFile(chunk)
    bytes[100] = (bytes[100] ?? 0) ^ 0xff
    await writeFile(chunk, bytes)
    await c.stop()
    // bob asks alice (the sharer) first: chunk 0 verifies, chunk 1 does not and is refused
    await expect(b.files.get(file.id, join(home, 'bob.bin'), { from: a.peerId })).rejects.toThrow(
      /chunk 1 from .* does not match its hash in the manifest: refused/
    )
    expect(b.files.list()[0]).toMatchObject({ id: file.id, state: 'partial', have: 1 })
    // nothing at the destination, not even the part opened while chunk 0 arrived
    expect((await readdir(home)).filter(f => f.startsWith('bob.bin'))).toEqual([])
    // carol comes back with an honest copy: bob resumes, fetching only what he lacks
    const c2 = await startNode({ home, name: 'carol', session: c.key.session })
    nodes.push(c2)
    await untilAllSee([a, b, c2])
    const r = await b.files.get(file.id, join(home, 'bob.bin'), { from: c2.peerId })
    expect(r.reusedChunks).toBe(1)
    expect(r.holders).toEqual([c2.peerId])
    expect(r.fetchedBytes).toBeLessThan(data.byteLength)
    expect(sha(await readFile(r.path))).toBe(sha(data))
  })

  it('fetches from another member who pins it; once nobody pins it the file is gone', async () => {
    const {
      home,
      nodes: [a, b, c]
    } = await mesh(['alice', 'bob', 'carol'])
    if (a == null || b == null || c == null) throw new Error('nodes')
    const { path, data } = await randomFile(home, 'g.bin', 1024 * 1024 + 7)
    const { file } = await a.files.share(path, '@all')
    await b.files.get(file.id, join(home, 'b.bin'))
    expect(await a.files.unpin(file.id)).toBe(true)
    expect(a.files.list()).toEqual([])
    await expect(readdir(blobRoot(home, 'test', a.key.session))).resolves.toEqual([])
    const r = await c.files.get(file.id, join(home, 'c.bin'))
    expect(r.holders).toEqual([b.peerId])
    expect(sha(await readFile(r.path))).toBe(sha(data))
    await b.files.unpin(file.id)
    await c.files.unpin(file.id)
    await expect(a.files.get(file.id, join(home, 'a.bin'))).rejects.toThrow(/no reachable member holds file/)
  })

  it('seals a file to its recipients: a member it was not shared with cannot open it', async () => {
    const {
      home,
      nodes: [a, b, c]
    } = await mesh(['alice', 'bob', 'carol'])
    if (a == null || b == null || c == null) throw new Error('nodes')
    const { path } = await randomFile(home, 'secret.bin', 1000)
    const { file } = await a.files.share(path, 'bob')
    await expect(c.files.get(file.id, join(home, 'c.bin'))).rejects.toHaveProperty('name', 'FileAccessError')
    expect(c.files.list()).toEqual([])
  })

  it('refuses a file above the cap with one clear line, writing nothing, at the sharer and at the fetcher', async () => {
    const {
      home,
      nodes: [a, b]
    } = await mesh(['alice', 'bob'], { alice: { maxFileBytes: 1_000_000 }, bob: { maxFileBytes: 3_000_000 } })
    if (a == null || b == null) throw new Error('nodes')
    const { path } = await randomFile(home, 'big.bin', 1_500_000)
    const err = await a.files.share(path, 'bob').catch(e => e as Error)
    expect(err).toHaveProperty('name', 'FileTooLargeError')
    expect((err as Error).message).toBe('big.bin is 1.5 MB; the limit is 1.0 MB (set CLAUDEMESH_MAX_FILE_MB to change it)')
    expect(a.files.list()).toEqual([])
    await expect(readdir(blobRoot(home, 'test', a.key.session))).resolves.toEqual([])
    const big = await randomFile(home, 'bigger.bin', 2_500_000)
    const { file } = await b.files.share(big.path, 'alice')
    await expect(a.files.get(file.id, join(home, 'x.bin'))).rejects.toThrow(/^file [0-9a-f]{12} is 2.5 MB; the limit is 1.0 MB/)
    expect(a.files.list()).toEqual([])
  })
})
