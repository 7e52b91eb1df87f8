/**
 * The claim path's order (SPEC.md §14.4): a claim is gossiped and its settle pulls start as soon
 * as it is signed, while its log write is still on its way to disk; the claim answers only once
 * the write is durable and the pulls are in; meanwhile the claim counts as held (a copy that
 * comes back is a duplicate). And the settle pulls ask each peer once, however many connections
 * lead to it.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { MemoryLog, Replica } from '../src/state/index.js'
import { onePerPeer } from '../src/state/sync.js'
import { TaskBoard } from '../src/tasks/index.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(7)

/** A log whose appends land only when the test opens the gate: a slow disk, under the test's control. */
class GatedLog extends MemoryLog {
  gate?: { open: () => void; wrote: Promise<void> }
  override async append(stream: string, seq: number, bytes: Uint8Array): Promise<void> {
    if (this.gate != null) await this.gate.wrote
    await super.append(stream, seq, bytes)
  }
  close(): () => void {
    let open!: () => void
    const wrote = new Promise<void>(resolve => {
      open = resolve
    })
    this.gate = { open, wrote }
    return () => {
      this.gate = undefined
      open()
    }
  }
}

describe('claim settle', () => {
  it('gossips the claim and starts the settle pulls before its log write lands; answers after both', async () => {
    const key = await generateKeyPair('Ed25519')
    const log = new GatedLog()
    const replica = new Replica(MESH, key, SEAL, 1, log, peerIdFromPrivateKey(key).toString())
    const steps: string[] = []
    let pullsDone!: () => void
    let gossiped: Uint8Array | undefined
    const board = new TaskBoard(
      replica,
      env => {
        steps.push('gossip')
        gossiped = env
      },
      {
        settle: async () => {
          steps.push('settle')
          await new Promise<void>(resolve => {
            pullsDone = resolve
          })
        }
      }
    )
    const t = await board.create({ title: 'slow disk' })
    steps.length = 0
    const open = log.close()
    let answered = false
    const claim = board.claim(t.id, 60_000).then(r => {
      answered = true
      return r
    })
    await expect.poll(() => steps).toEqual(['gossip', 'settle'])
    expect(Object.values(replica.versionVector())).toEqual([1]) // the claim (seq 2) is not logged yet
    // but it is held: a pull asks past it, and a copy a peer sends back is a duplicate
    expect(Object.values(replica.pullVector())).toEqual([2])
    expect(await replica.ingest(gossiped as Uint8Array)).toBe('duplicate')
    open()
    await expect.poll(() => Object.values(replica.versionVector())).toEqual([2])
    expect(answered).toBe(false) // the pulls are still out
    pullsDone()
    expect((await claim).won).toBe(true)
  })

  it('pulls once per peer: one open connection each, a direct one before a relayed one', () => {
    const conn = (peer: string, status: string, limited: boolean): Connection =>
      ({ remotePeer: { toString: () => peer }, status, limits: limited ? { bytes: 1n } : undefined }) as unknown as Connection
    const relayed = conn('a', 'open', true)
    const direct = conn('a', 'open', false)
    const b = conn('b', 'open', false)
    const picked = onePerPeer([relayed, conn('b', 'closing', false), direct, b, conn('a', 'open', false)])
    expect([...picked.keys()]).toEqual(['a', 'b'])
    expect(picked.get('a')).toBe(direct)
    expect(picked.get('b')).toBe(b)
  })
})
