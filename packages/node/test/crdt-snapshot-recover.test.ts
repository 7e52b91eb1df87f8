/**
 * A stored replica snapshot file that is unusable (SPEC.md §11.3) — garbage or truncated bytes,
 * a broken head, more envelopes than the log holds, bytes that no longer match its checksum —
 * does not stop the node: the replica warns on stderr and rebuilds the document from the update log (envelopes
 * are never deleted), and the next snapshot is a good one. A node restarted over such a store
 * serves its notes.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decode, encode } from 'cborg'
import { describe, expect, it, vi } from 'vitest'
import { paths, snapshotsBeside } from '../src/home.js'
import type { MeshNode } from '../src/index.js'
import { Replica } from '../src/state/index.js'
import { LevelLog, SNAPSHOT_FILE } from '../src/state/log.js'
import { GroupCommit } from '../src/store/commit.js'
import { openStore, type Store, sublevel } from '../src/store/index.js'
import { homeWithMesh, startNode, stoppedWithNoteAndState } from './helpers.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

const fileOf = (dir: string): string => join(snapshotsBeside(dir), SNAPSHOT_FILE)

/** A snapshot file with this head and update, its checksum right: what this version would have written. */
function snapshotFile(head: Record<string, unknown>, update: Uint8Array): Uint8Array {
  const h = encode(head)
  const pre = Buffer.alloc(44)
  Buffer.from('CMRS').copy(pre)
  pre.writeUInt32LE(1, 4)
  pre.writeUInt32LE(h.byteLength, 8)
  createHash('sha256').update(h).update(update).digest().copy(pre, 12)
  return Buffer.concat([pre, h, update])
}

/** The head and update of a snapshot file (a test's own reading of the layout). */
function parse(b: Uint8Array): { head: Record<string, unknown>; update: Uint8Array } {
  const hlen = Buffer.from(b).readUInt32LE(8)
  return { head: decode(b.subarray(44, 44 + hlen)) as Record<string, unknown>, update: b.subarray(44 + hlen) }
}

/** Ways to spoil a stored snapshot file; each must leave a node that starts, from the log. */
const CORRUPTIONS: Array<[string, (file: string) => Promise<void>]> = [
  [
    'garbage bytes',
    async file => {
      const v = await readFile(file)
      await writeFile(
        file,
        Uint8Array.from({ length: v.byteLength }, (_, i) => (i * 131 + 17) & 0xff)
      )
    }
  ],
  [
    'truncated (a crash mid-write that was renamed anyway)',
    async file => {
      await truncate(file, (await stat(file)).size >> 1)
    }
  ],
  [
    'truncated, head and sum agreeing',
    async file => {
      const { head, update } = parse(await readFile(file))
      const cut = update.subarray(0, update.byteLength >> 1)
      await writeFile(file, snapshotFile({ ...head, size: cut.byteLength }, cut))
    }
  ],
  [
    'a head that is not CBOR, its sum agreeing',
    async file => {
      const { update } = parse(await readFile(file))
      const bad = Buffer.concat([Buffer.alloc(44), Buffer.from([0xff, 0xfe, 0x00]), update])
      Buffer.from('CMRS').copy(bad)
      bad.writeUInt32LE(1, 4)
      bad.writeUInt32LE(3, 8)
      createHash('sha256').update(bad.subarray(44)).digest().copy(bad, 12)
      await writeFile(file, bad)
    }
  ],
  [
    'more envelopes than the log holds',
    async file => {
      const { head, update } = parse(await readFile(file))
      await writeFile(file, snapshotFile({ ...head, arrival: (head.arrival as number) + 100 }, update))
    }
  ],
  [
    'one flipped bit',
    async file => {
      const v = await readFile(file)
      v[v.byteLength - 40] = (v[v.byteLength - 40] as number) ^ 4
      await writeFile(file, v)
    }
  ]
]

async function openLog(dir: string): Promise<{ db: Store; log: LevelLog }> {
  const db = await openStore(dir, { version: 1, migrations: { 0: async () => {} } })
  const crdt = sublevel(db, 'crdt')
  const log = new LevelLog(crdt, new GroupCommit(db), snapshotsBeside(dir))
  await log.open()
  return { db, log }
}

describe('crdt snapshot recovery', () => {
  it('an unusable snapshot is ignored with a warning on stderr: the document is rebuilt from the log, and the next snapshot is good', async () => {
    const key = await generateKeyPair('Ed25519')
    const self = peerIdFromPrivateKey(key).toString()
    for (const [what, spoil] of CORRUPTIONS) {
      const root = await mkdtemp(join(tmpdir(), 'cm-snap-recover-'))
      const dir = join(root, 'db')
      try {
        let { db, log } = await openLog(dir)
        const writer = new Replica(MESH, key, SEAL, 1, log, self)
        await writer.load()
        for (let i = 0; i < 40; i++)
          await writer.change(doc => {
            doc.getMap('memory').set(`n${i}`, { content: `note ${i} `.repeat(20), i })
          })
        await writer.snapshot()
        await writer.change(doc => {
          doc.getMap('state').set('after', 'the snapshot')
        })
        const want = writer.doc.toJSON()
        const vv = writer.versionVector()
        await db.close()
        await spoil(fileOf(dir))
        ;({ db, log } = await openLog(dir))
        const errors: string[] = []
        const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
          errors.push(String(chunk))
          return true
        })
        const r = new Replica(MESH, key, SEAL, 2, log, self)
        try {
          await r.load()
        } finally {
          spy.mockRestore()
        }
        expect(r.snapshotIgnored, what).toBeTruthy()
        expect(errors.join(''), what).toMatch(/crdt snapshot is unusable.*rebuilding the document from the update log/)
        r.doc.getMap('memory')
        r.doc.getMap('state')
        expect(r.doc.toJSON(), what).toEqual(want)
        expect(r.versionVector(), what).toEqual(vv)
        // the replica goes on as usual, and a clean stop's snapshot replaces the broken one
        await r.change(doc => {
          doc.getMap('state').set('later', 1)
        })
        await r.snapshot()
        await db.close()
        ;({ db, log } = await openLog(dir))
        const again = new Replica(MESH, key, SEAL, 3, log, self)
        await again.load()
        expect(again.snapshotIgnored, what).toBeUndefined()
        again.doc.getMap('memory')
        again.doc.getMap('state')
        expect(again.doc.toJSON(), what).toEqual({ ...want, state: { ...want.state, later: 1 } })
        await db.close()
      } finally {
        await rm(root, { recursive: true, force: true })
      }
    }
  })

  it('a node whose stored snapshot was overwritten with garbage while it was down starts and recalls its notes', async () => {
    const h = await homeWithMesh()
    const session = randomUUID()
    try {
      const note = await stoppedWithNoteAndState(h.home, session)
      // the snapshot file is beside the session's store, not in it
      const file = join(paths.snapshots(h.home, 'test', session), SNAPSHOT_FILE)
      expect((await stat(file)).size).toBeGreaterThan(44)
      await writeFile(file, new Uint8Array([0x01, 0xff, 0xff, 0x42, 0x13, 0x37]))
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
      let node: MeshNode
      try {
        node = await startNode({ home: h.home, name: 'a', session })
      } finally {
        spy.mockRestore()
      }
      expect((node as unknown as { shared: { replica: Replica } }).shared.replica.snapshotIgnored).toBeTruthy()
      expect(node.data.state.get('deploy')?.value).toBe('frozen')
      expect((await node.data.memory.recall('staging'))[0]?.id).toBe(note.id)
      await node.stop()
    } finally {
      await h.cleanup()
    }
  })
})
