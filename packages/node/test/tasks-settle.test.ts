/**
 * The claim path's order (SPEC.md §14.4): a claim's settle pulls start as soon as it is signed,
 * while its log write is still on its way to disk; it is gossiped once the write is durable, and
 * answers once the pulls are in too; meanwhile the claim counts as held (a copy that comes back
 * is a duplicate). And the settle pulls ask each peer once, however many connections
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
  it('starts the settle pulls before its log write lands, gossips it once the write lands, answers after both', async () => {
    const key = await generateKeyPair('Ed25519')
    const log = new GatedLog()
    const replica = new Replica(MESH, key, SEAL, 1, log, peerIdFromPrivateKey(key).toString())
    const steps: string[] = []
    let pullsDone!: () => void
    const board = new TaskBoard(
      replica,
      () => {
        steps.push('gossip')
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
    await expect.poll(() => steps).toEqual(['settle'])
    expect(Object.values(replica.versionVector())).toEqual([1]) // the claim (seq 2) is not logged yet
    // but it is held: a pull asks past it
    expect(Object.values(replica.pullVector())).toEqual([2])
    open()
    await expect.poll(() => steps).toEqual(['settle', 'gossip'])
    expect(Object.values(replica.versionVector())).toEqual([2])
    expect(answered).toBe(false) // the pulls are still out
    pullsDone()
    expect((await claim).won).toBe(true)

    // a copy of a change that comes back (a peer's pull answer) before its write lands is a duplicate
    const again = log.close()
    let signed: Uint8Array | undefined
    const writing = replica.change(
      doc => {
        doc.getMap('state').set('k', { v: 1, by: replica.selfId, at: 1 })
      },
      env => {
        signed = env
      }
    )
    await expect.poll(() => signed).toBeDefined()
    expect(await replica.ingest(signed as Uint8Array)).toBe('duplicate')
    again()
    await writing
    expect(Object.values(replica.versionVector())).toEqual([3])
  })

  it('serves a claim to pulls from the moment it is signed: a rival that claims while its write is on the way sees it and loses', async () => {
    const made = async (log: MemoryLog) => {
      const key = await generateKeyPair('Ed25519')
      return new Replica(MESH, key, SEAL, 1, log, peerIdFromPrivateKey(key).toString())
    }
    const logA = new GatedLog()
    const a = await made(logA)
    const b = await made(new MemoryLog())
    /** one settle pull: `to` asks `from` for what its vector lacks */
    const pull = async (from: Replica, to: Replica) => {
      for (const env of await from.missing(to.pullVector())) await to.ingest(env)
    }
    let bAnswer: { won: boolean } | undefined
    // one clock that moves on at every read: b's claim is later than a's, as in real time
    let ms = Date.now()
    const now = () => ms++
    const boardB = new TaskBoard(b, () => {}, { now, settle: () => pull(a, b) })
    const boardA = new TaskBoard(a, () => {}, {
      now,
      // a's pull reaches b before b claims; b claims (and pulls a) while a's write has not landed
      settle: async () => {
        await pull(b, a)
        bAnswer = await boardB.claim(t.id, 60_000)
      }
    })
    const t = await boardA.create({ title: 'contested' })
    await pull(a, b)
    const open = logA.close()
    const claimA = boardA.claim(t.id, 60_000)
    await expect.poll(() => bAnswer).toBeDefined()
    expect(bAnswer?.won).toBe(false) // b's pull brought a's claim, which is not on a's disk yet
    open()
    expect((await claimA).won).toBe(true)
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
