import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MeshNode, signRecord } from '../src/index.js'
import { presenceKey } from '../src/identity/secrets.js'
import { HEARTBEAT_SCALE_FROM, scaledTimings } from '../src/presence/constants.js'
import { decodeRecord, sealBody } from '../src/presence/record.js'
import { homeWithMesh, startNode, until } from './helpers.js'

const T = { heartbeatMs: 300, ttlMs: 1_500, graceMs: 800, maxClockSkewMs: 120_000 }

describe('presence timings scale with the mesh (SPEC.md §6.3)', () => {
  it('stay as configured up to HEARTBEAT_SCALE_FROM online peers, then stretch together, bounded', () => {
    expect(scaledTimings(T, 0)).toEqual(T)
    expect(scaledTimings(T, HEARTBEAT_SCALE_FROM)).toEqual(T)
    expect(scaledTimings(T, HEARTBEAT_SCALE_FROM * 2)).toEqual({ ...T, heartbeatMs: 600, ttlMs: 3_000, graceMs: 1_600 })
    expect(scaledTimings(T, 1_000_000).heartbeatMs).toBe(300 * 6)
  })

  describe('a node that knows twice HEARTBEAT_SCALE_FROM peers', () => {
    let a: MeshNode
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      const h = await homeWithMesh()
      cleanup = h.cleanup
      a = await startNode({ home: h.home, name: 'alice', presence: T })
    })
    afterAll(async () => {
      await a.stop()
      await cleanup()
    })

    it('heartbeats half as often and keeps silent peers twice as long', async () => {
      const mesh = a.mesh
      const pk = presenceKey(mesh.contentSecret ?? new Uint8Array(32), mesh.id)
      const body = { name: 'p', role: '', groups: [], status: 'idle' as const, summary: '', cwd: '/', host: 'h' }
      const n = HEARTBEAT_SCALE_FROM * 2
      const records: Uint8Array[] = []
      for (let i = 0; i < n; i++) {
        const key = await generateKeyPair('Ed25519')
        const peer = key.publicKey.raw
        const at = Date.now()
        records.push(
          await signRecord(mesh.id, key, { v: 1, peer, inc: at, seq: 1, at, addrs: [], gone: false, body: sealBody(pk, peer, body) })
        )
      }
      const t0 = Date.now()
      for (const r of records) expect(await a.presence.accept(r)).toBe(true)
      const seq0 = decodeRecord(a.presence.ownRecord() ?? new Uint8Array()).seq
      expect(a.presence.current()).toMatchObject({ heartbeatMs: 600, ttlMs: 3_000, graceMs: 1_600 })
      // those peers never speak again: they leave by the stretched TTL, not the configured one
      let leftAt = 0
      await until(
        a,
        ['peer:leave'],
        () => {
          if (leftAt === 0 && a.peers().some(p => !p.online)) leftAt = Date.now()
          return leftAt > 0
        },
        10_000,
        'the silent peers to leave'
      )
      expect(leftAt - t0).toBeGreaterThanOrEqual(3_000)
      // our own heartbeats came every 600 ms, not every 300 (one more for timer slack)
      const seq1 = decodeRecord(a.presence.ownRecord() ?? new Uint8Array()).seq
      expect(seq1 - seq0).toBeLessThanOrEqual(Math.floor((leftAt - t0) / 600) + 1)
      expect(seq1 - seq0).toBeGreaterThanOrEqual(2)
    })
  })
})
