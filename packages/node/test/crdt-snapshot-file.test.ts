/**
 * The replica's snapshot as a file beside the store (SPEC.md §11.3): `crdt.snapshot` in the
 * store's snapshots directory (0700, the file 0600), replaced whole; a store an older version
 * wrote (head, sum and pieces in LevelDB, or one older `s!snapshot` value) still loads, and its
 * next snapshot writes the file and deletes those keys; a file that is truncated, another
 * file, of another version, spoiled or over the size limit is refused with a clear error; a temp
 * file a crash left is removed at open.
 */
import { createHash, randomUUID } from 'node:crypto'
import { chmod, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { paths, snapshotsBeside } from '../src/home.js'
import { INDEX_FILE } from '../src/memory/index-snapshot.js'
import { SESSION_LAYOUT } from '../src/session-store.js'
import { LevelLog, SNAPSHOT_FILE } from '../src/state/log.js'
import { GroupCommit } from '../src/store/commit.js'
import { openStore, type Store, sublevel } from '../src/store/index.js'
import { homeWithMesh, startNode, stoppedWithNoteAndState, tempHome } from './helpers.js'

type Sub = ReturnType<typeof sublevel>

/** `fn` with a store directory in a temp root of its own, removed afterwards. */
async function inTempStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const { home, cleanup } = await tempHome()
  try {
    await fn(join(home, 'db'))
  } finally {
    await cleanup()
  }
}

async function openLog(dir: string): Promise<{ db: Store; crdt: Sub; log: LevelLog }> {
  const db = await openStore(dir, { version: 1, migrations: { 0: async () => {} } })
  const crdt = sublevel(db, 'crdt')
  const log = new LevelLog(crdt, new GroupCommit(db), snapshotsBeside(dir))
  await log.open()
  return { db, crdt, log }
}

const big = { update: Uint8Array.from({ length: 2 * 1024 * 1024 + 7 }, (_, i) => i % 253), arrival: 9, vv: { a: 2, b: 5 } }

describe('crdt snapshot file', () => {
  it('is written beside the store, private, loads as saved, and is replaced whole', async () => {
    await inTempStore(async dir => {
      const { db, crdt, log } = await openLog(dir)
      const snaps = snapshotsBeside(dir)
      expect((await stat(snaps)).mode & 0o777).toBe(0o700)
      expect(await log.snapshot()).toBeUndefined()
      await log.saveSnapshot(big)
      expect(await readdir(snaps)).toEqual([SNAPSHOT_FILE])
      expect((await stat(join(snaps, SNAPSHOT_FILE))).mode & 0o777).toBe(0o600)
      // nothing of it in LevelDB, nor in LevelDB's directory
      expect(await crdt.keys({ gte: 's!', lt: 's"' }).all()).toEqual([])
      expect((await readdir(dir)).some(f => f.includes('snapshot'))).toBe(false)
      const back = await log.snapshot()
      expect(back?.arrival).toBe(9)
      expect(back?.vv).toEqual({ a: 2, b: 5 })
      expect(Buffer.from(back?.update as Uint8Array).equals(Buffer.from(big.update))).toBe(true)
      await log.saveSnapshot({ update: new Uint8Array([7]), arrival: 10, vv: {} })
      expect(await log.snapshot()).toEqual({ update: new Uint8Array([7]), arrival: 10, vv: {} })
      // saves asked together land in the order asked
      await Promise.all([log.saveSnapshot(big), log.saveSnapshot({ update: new Uint8Array([8]), arrival: 11, vv: { c: 1 } })])
      expect(await log.snapshot()).toEqual({ update: new Uint8Array([8]), arrival: 11, vv: { c: 1 } })
      expect(await readdir(snaps)).toEqual([SNAPSHOT_FILE])
      await db.close()
    })
  })

  it('loads an older version’s snapshot from LevelDB (pieces, or one value); the next snapshot writes the file and deletes the keys', async () => {
    await inTempStore(async dir => {
      let { db, crdt, log } = await openLog(dir)
      // the layout versions before the file wrote (SPEC.md §11.3 before it): head, sum, pieces of at most 1 MiB
      const piece = 1024 * 1024
      await crdt.put('s!head', encode({ arrival: big.arrival, vv: big.vv, size: big.update.byteLength }))
      await crdt.put('s!sum', createHash('sha256').update(big.update).digest())
      for (let at = 0, n = 0; at < big.update.byteLength; at += piece, n++)
        await crdt.put(`s!update!${String(n).padStart(6, '0')}`, big.update.subarray(at, at + piece))
      await db.close()
      ;({ db, crdt, log } = await openLog(dir))
      const old = await log.snapshot()
      expect(old?.arrival).toBe(9)
      expect(old?.stale).toBe(true)
      expect(Buffer.from(old?.update as Uint8Array).equals(Buffer.from(big.update))).toBe(true)
      // an older piece that does not match the sum, and a missing one, are refused as before
      const first = (await crdt.get('s!update!000000')) as Uint8Array
      await crdt.put('s!update!000000', new Uint8Array(piece))
      await expect(log.snapshot()).rejects.toThrow(/does not match its checksum/)
      await crdt.del('s!update!000000')
      await expect(log.snapshot()).rejects.toThrow(/crdt snapshot has 1048583 of its 2097159 bytes/)
      await crdt.put('s!update!000000', first)
      await log.saveSnapshot({ update: new Uint8Array([1, 2]), arrival: 12, vv: { a: 3 } })
      expect(await crdt.keys({ gte: 's!', lt: 's"' }).all()).toEqual([])
      expect(await log.snapshot()).toEqual({ update: new Uint8Array([1, 2]), arrival: 12, vv: { a: 3 } })
      await db.close()

      // older still: one value
      await rm(dirname(dir), { recursive: true, force: true })
      ;({ db, crdt, log } = await openLog(dir))
      const single = { update: new Uint8Array([1, 2, 3]), arrival: 4, vv: { a: 1 } }
      await crdt.put('s!snapshot', encode(single))
      expect(await log.snapshot()).toEqual({ ...single, stale: true })
      await log.saveSnapshot({ ...single, arrival: 5 })
      expect(await crdt.keys({ gte: 's!', lt: 's"' }).all()).toEqual([])
      expect(await log.snapshot()).toEqual({ ...single, arrival: 5 })
      await db.close()
    })
  })

  it('refuses a file that is truncated, longer, another file, of another version, spoiled, over the limit or writable by others', async () => {
    await inTempStore(async dir => {
      const { db, log } = await openLog(dir)
      const file = join(snapshotsBeside(dir), SNAPSHOT_FILE)
      await log.saveSnapshot(big)
      const good = await readFile(file)
      const spoil = async (bytes: Uint8Array): Promise<void> => {
        await writeFile(file, bytes, { mode: 0o600 })
      }
      await spoil(good.subarray(0, good.byteLength - 1000))
      await expect(log.snapshot()).rejects.toThrow(/crdt snapshot file does not match its checksum/)
      await spoil(good.subarray(0, 30))
      await expect(log.snapshot()).rejects.toThrow(/not one \(no CMRS/)
      await spoil(Buffer.concat([good, new Uint8Array(1)]))
      await expect(log.snapshot()).rejects.toThrow(/does not match its checksum/)
      const flipped = Buffer.from(good)
      flipped[flipped.byteLength - 40] = (flipped[flipped.byteLength - 40] as number) ^ 4
      await spoil(flipped)
      await expect(log.snapshot()).rejects.toThrow(/does not match its checksum/)
      await spoil(Buffer.from('garbage, not a snapshot at all, but long enough to have a preamble'))
      await expect(log.snapshot()).rejects.toThrow(/not one \(no CMRS/)
      const v2 = Buffer.from(good)
      v2.writeUInt32LE(2, 4)
      await spoil(v2)
      await expect(log.snapshot()).rejects.toThrow(/has version 2, not 1/)
      const longHead = Buffer.from(good)
      longHead.writeUInt32LE(0xffffffff, 8)
      await spoil(longHead)
      await expect(log.snapshot()).rejects.toThrow(/a header longer than the file/)
      // a head and update whose sum agrees, but a size the bytes do not have
      const head = encode({ arrival: 1, vv: {}, size: 10 })
      const body = Buffer.concat([head, new Uint8Array(4)])
      const pre = Buffer.alloc(44)
      Buffer.from('CMRS').copy(pre)
      pre.writeUInt32LE(1, 4)
      pre.writeUInt32LE(head.byteLength, 8)
      createHash('sha256').update(body).digest().copy(pre, 12)
      await spoil(Buffer.concat([pre, body]))
      await expect(log.snapshot()).rejects.toThrow(/has 4 bytes of update, its header says 10/)
      // over the limit: refused from its size, before anything is read (a sparse file)
      await spoil(good)
      await truncate(file, 44 + 1024 * 1024 + 1024 * 1024 * 1024 + 1)
      await expect(log.snapshot()).rejects.toThrow(/over the \d+-byte limit/)
      await spoil(good)
      await chmod(file, 0o666)
      if (process.getuid != null) await expect(log.snapshot()).rejects.toThrow(/writable by other users/)
      await chmod(file, 0o600)
      expect((await log.snapshot())?.arrival).toBe(9)
      await db.close()
    })
  })

  it('a temp file a crash left during a write is ignored and removed at the next open', async () => {
    await inTempStore(async dir => {
      let { db, log } = await openLog(dir)
      await log.saveSnapshot({ update: new Uint8Array([5]), arrival: 0, vv: {} })
      await db.close()
      const snaps = snapshotsBeside(dir)
      await writeFile(join(snaps, `${SNAPSHOT_FILE}.0123456789ab.tmp`), 'half a snapshot')
      ;({ db, log } = await openLog(dir))
      expect(await readdir(snaps)).toEqual([SNAPSHOT_FILE])
      expect(await log.snapshot()).toEqual({ update: new Uint8Array([5]), arrival: 0, vv: {} })
      await db.close()
    })
  })

  it('a node over a store an older version left (both snapshots in LevelDB) starts from them, and its clean stop moves them to files', async () => {
    const h = await homeWithMesh()
    const session = randomUUID()
    try {
      const note = await stoppedWithNoteAndState(h.home, session)
      // turn the files back into the keys the previous version wrote (SPEC.md §11.3), as it left them
      const snaps = paths.snapshots(h.home, 'test', session)
      const file = await readFile(join(snaps, SNAPSHOT_FILE))
      const hlen = file.readUInt32LE(8)
      const update = file.subarray(44 + hlen)
      const index = await readFile(join(snaps, INDEX_FILE))
      const db = await openStore(paths.data(h.home, 'test', session), SESSION_LAYOUT)
      const crdt = sublevel(db, 'crdt')
      await crdt.batch([
        { type: 'put', key: 's!head', value: file.subarray(44, 44 + hlen) },
        { type: 'put', key: 's!sum', value: createHash('sha256').update(update).digest() },
        { type: 'put', key: 's!update!000000', value: update },
        { type: 'put', key: 'r!index!000000', value: index }
      ])
      await db.close()
      await unlink(join(snaps, SNAPSHOT_FILE))
      await unlink(join(snaps, INDEX_FILE))

      let node = await startNode({ home: h.home, name: 'a', session })
      const shared = (node as unknown as { shared: { replica: { snapshotIgnored?: string } } }).shared
      expect(shared.replica.snapshotIgnored).toBeUndefined()
      await node.data.memory.ready
      expect(node.data.memory.indexStart).toMatchObject({ from: 'snapshot', sameDoc: true, reread: 0 })
      expect(node.data.state.get('deploy')?.value).toBe('frozen')
      expect((await node.data.memory.recall('staging'))[0]?.id).toBe(note.id)
      await node.stop() // nothing changed, yet both are written where this version keeps them
      expect((await readdir(snaps)).sort()).toEqual([SNAPSHOT_FILE, INDEX_FILE].sort())
      const after = await openStore(paths.data(h.home, 'test', session), SESSION_LAYOUT)
      expect(await sublevel(after, 'crdt').keys({ gte: 'r!', lt: 's"' }).all()).toEqual([])
      await after.close()
      node = await startNode({ home: h.home, name: 'a', session })
      await node.data.memory.ready
      expect(node.data.memory.indexStart).toMatchObject({ from: 'snapshot', sameDoc: true, reread: 0 })
      expect((await node.data.memory.recall('staging'))[0]?.id).toBe(note.id)
      await node.stop()
    } finally {
      await h.cleanup()
    }
  })
})
