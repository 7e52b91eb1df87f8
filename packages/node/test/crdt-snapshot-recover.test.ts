/**
 * A stored replica snapshot that is unusable (SPEC.md §11.3) — garbage or truncated bytes, a
 * missing piece, a broken head, bytes that no longer match its checksum — does not stop the
 * node: the replica warns on stderr and rebuilds the document from the update log (envelopes
 * are never deleted), and the next snapshot is a good one. A node restarted over such a store
 * serves its notes.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it, vi } from 'vitest'
import { Replica } from '../src/state/index.js'
import { LevelLog } from '../src/state/log.js'
import { SESSION_LAYOUT } from '../src/session-store.js'
import { GroupCommit } from '../src/store/commit.js'
import { openStore, type Store, sublevel } from '../src/store/index.js'
import { homeWithMesh, startNode } from './helpers.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

type Sub = ReturnType<typeof sublevel>
/** Ways to spoil a stored snapshot, each one the old code failed to start on. */
const CORRUPTIONS: Array<[string, (crdt: Sub) => Promise<void>]> = [
  [
    'garbage bytes',
    async crdt => {
      const v = (await crdt.get('s!update!000000')) as Uint8Array
      await crdt.put(
        's!update!000000',
        Uint8Array.from({ length: v.byteLength }, (_, i) => (i * 131 + 17) & 0xff)
      )
    }
  ],
  [
    'truncated, head and sum agreeing',
    async crdt => {
      const v = (await crdt.get('s!update!000000')) as Uint8Array
      const cut = v.subarray(0, v.byteLength >> 1)
      const { createHash } = await import('node:crypto')
      const { decode, encode } = await import('cborg')
      const head = decode((await crdt.get('s!head')) as Uint8Array) as Record<string, unknown>
      await crdt.put('s!update!000000', cut)
      await crdt.put('s!head', encode({ ...head, size: cut.byteLength }))
      await crdt.put('s!sum', createHash('sha256').update(cut).digest())
    }
  ],
  [
    'a missing piece',
    async crdt => {
      await crdt.del('s!update!000000')
    }
  ],
  [
    'a head that is not CBOR',
    async crdt => {
      await crdt.put('s!head', new Uint8Array([0xff, 0xfe, 0x00]))
    }
  ],
  [
    'one flipped bit',
    async crdt => {
      const v = ((await crdt.get('s!update!000000')) as Uint8Array).slice()
      v[v.byteLength - 40] = (v[v.byteLength - 40] as number) ^ 4
      await crdt.put('s!update!000000', v)
    }
  ]
]

async function openLog(dir: string): Promise<{ db: Store; crdt: Sub; log: LevelLog }> {
  const db = await openStore(dir, { version: 1, migrations: { 0: async () => {} } })
  const crdt = sublevel(db, 'crdt')
  const log = new LevelLog(crdt, new GroupCommit(db))
  await log.open()
  return { db, crdt, log }
}

describe('crdt snapshot recovery', () => {
  it('an unusable snapshot is ignored with a warning on stderr: the document is rebuilt from the log, and the next snapshot is good', async () => {
    const key = await generateKeyPair('Ed25519')
    const self = peerIdFromPrivateKey(key).toString()
    for (const [what, spoil] of CORRUPTIONS) {
      const dir = await mkdtemp(join(tmpdir(), 'cm-snap-recover-'))
      try {
        let { db, crdt, log } = await openLog(dir)
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
        await spoil(crdt)
        await db.close()
        ;({ db, crdt, log } = await openLog(dir))
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
        await rm(dir, { recursive: true, force: true })
      }
    }
  })

  it('a node whose stored snapshot was overwritten with garbage while it was down starts and recalls its notes', async () => {
    const h = await homeWithMesh()
    const session = randomUUID()
    try {
      let node = await startNode({ home: h.home, name: 'a', session })
      const note = await node.data.memory.remember('the staging database lives on host db-2', ['infra'])
      await node.data.state.set('deploy', 'frozen')
      await node.stop()
      const dir = join(h.home, 'data', 'test', session)
      const db = await openStore(dir, SESSION_LAYOUT)
      const crdt = sublevel(db, 'crdt')
      expect(await crdt.get('s!head')).toBeDefined()
      await crdt.put('s!update!000000', new Uint8Array([0x01, 0xff, 0xff, 0x42, 0x13, 0x37]))
      await db.close()
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
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
