/**
 * The replica's snapshot in LevelDB (SPEC.md §11.3): a head `s!head` and the raw update in
 * pieces of at most 1 MiB under `s!update!<n>`, replaced whole; a store an older version wrote
 * (one `s!snapshot` value) still loads, and its next snapshot replaces that value; pieces of
 * another size load in key order; a snapshot missing a piece, or whose bytes do not match its
 * sum, is refused with a clear error.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { LevelLog, SNAPSHOT_CHUNK_BYTES } from '../src/state/log.js'
import { GroupCommit } from '../src/store/commit.js'
import { openStore, sublevel } from '../src/store/index.js'

describe('crdt snapshot in pieces', () => {
  it('saves a head and pieces, loads them, replaces them whole, refuses a missing piece, and still reads an older single value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-snap-pieces-'))
    try {
      const db = await openStore(dir, { version: 1, migrations: { 0: async () => {} } })
      const crdt = sublevel(db, 'crdt')
      const log = new LevelLog(crdt, new GroupCommit(db))
      await log.open()
      expect(await log.snapshot()).toBeUndefined()
      const keys = async (): Promise<string[]> => await crdt.keys({ gte: 's!', lt: 's"' }).all()

      // an older version's store: one value
      const old = { update: new Uint8Array([1, 2, 3]), arrival: 4, vv: { a: 1 } }
      await crdt.put('s!snapshot', encode(old))
      expect(await log.snapshot()).toEqual(old)

      const big = { update: Uint8Array.from({ length: 2 * SNAPSHOT_CHUNK_BYTES + 7 }, (_, i) => i % 253), arrival: 9, vv: { a: 2, b: 5 } }
      await log.saveSnapshot(big)
      expect(await keys()).toEqual(['s!head', 's!sum', 's!update!000000', 's!update!000001', 's!update!000002'])
      const back = await log.snapshot()
      expect(back?.arrival).toBe(9)
      expect(back?.vv).toEqual({ a: 2, b: 5 })
      expect(Buffer.from(back?.update as Uint8Array).equals(Buffer.from(big.update))).toBe(true)

      await log.saveSnapshot({ update: new Uint8Array([7]), arrival: 10, vv: {} })
      expect(await keys()).toEqual(['s!head', 's!sum', 's!update!000000'])
      expect(await log.snapshot()).toEqual({ update: new Uint8Array([7]), arrival: 10, vv: {} })

      await log.saveSnapshot(big)
      // pieces of another size (SPEC.md §11.3: at most 1 MiB each) are read in key order
      const sum = await crdt.get('s!sum')
      const ops = (await keys()).filter(k => k.startsWith('s!update!')).map(key => ({ type: 'del' as const, key }))
      await crdt.batch(ops)
      const small = 300_007
      for (let at = 0, n = 0; at < big.update.byteLength; at += small, n++)
        await crdt.put(`s!update!${String(n).padStart(6, '0')}`, big.update.subarray(at, at + small))
      const other = await log.snapshot()
      expect(Buffer.from(other?.update as Uint8Array).equals(Buffer.from(big.update))).toBe(true)
      expect(await crdt.get('s!sum')).toEqual(sum)
      // a piece that does not match the sum
      await crdt.put('s!update!000003', new Uint8Array(small))
      await expect(log.snapshot()).rejects.toThrow(/does not match its checksum/)

      await log.saveSnapshot(big)
      await crdt.put('s!update!000001', new Uint8Array(SNAPSHOT_CHUNK_BYTES))
      await expect(log.snapshot()).rejects.toThrow(/does not match its checksum/)
      await log.saveSnapshot(big)
      await crdt.del('s!update!000001')
      await expect(log.snapshot()).rejects.toThrow(/crdt snapshot has 1048583 of its 2097159 bytes/)
      await db.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
