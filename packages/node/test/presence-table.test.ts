import { describe, expect, it } from 'vitest'
import { DEFAULT_TIMINGS } from '../src/index.js'
import type { SignedRecord } from '../src/presence/record.js'
import { applyRecord, expired, newer, type PeerEntry } from '../src/presence/table.js'

const t = DEFAULT_TIMINGS
const rec = (inc: number, seq: number, at: number, gone = false): SignedRecord => ({
  v: 1,
  peer: new Uint8Array(32),
  inc,
  seq,
  at,
  addrs: [],
  gone,
  body: new Uint8Array(0),
  sig: new Uint8Array(64)
})
const entry = (r: SignedRecord, lastSeen: number): PeerEntry => ({
  id: 'p',
  record: r,
  bytes: new Uint8Array(0),
  lastSeen,
  state: 'offline'
})

describe('the peer table', () => {
  it('orders records by (incarnation, sequence)', () => {
    expect(newer(rec(2, 1, 0), rec(1, 9, 0))).toBe(true)
    expect(newer(rec(1, 2, 0), rec(1, 1, 0))).toBe(true)
    expect(newer(rec(1, 1, 0), rec(1, 1, 0))).toBe(false)
  })

  it('joins on a fresh record, updates after, ignores replays, leaves on goodbye', () => {
    const now = 1_000_000
    const first = entry(rec(5, 1, now), now)
    expect(applyRecord(undefined, first, now, t)).toBe('join')
    const heartbeat = entry(rec(5, 2, now), now)
    expect(applyRecord(first, heartbeat, now, t)).toBe('quiet')
    const second = {
      ...entry(rec(5, 3, now), now),
      body: { name: 'x', role: '', groups: [], status: 'working' as const, summary: '', cwd: '', host: '' }
    }
    expect(applyRecord(heartbeat, second, now, t)).toBe('update')
    expect(applyRecord(second, entry(rec(5, 3, now), now), now, t)).toBe('stale')
    expect(applyRecord(second, entry(rec(5, 1, now), now), now, t)).toBe('stale')
    const restarted = entry(rec(6, 1, now), now)
    expect(applyRecord(second, restarted, now, t)).toBe('update')
    expect(applyRecord(restarted, entry(rec(6, 2, now, true), now), now, t)).toBe('leave')
  })

  it('an old record never brings a peer online (no ghosts from replays)', () => {
    const now = 10_000_000
    const old = entry(rec(1, 1, now - t.ttlMs - t.maxClockSkewMs - 1), now)
    expect(applyRecord(undefined, old, now, t)).toBe('quiet')
    expect(old.state).toBe('offline')
  })

  it('a remembered record forwarded while fresh is news once, not a replay', () => {
    const now = 2_000_000
    const restored = { ...entry(rec(3, 7, now - 1_000), now - 1_000), restored: true }
    const forwarded = entry(rec(3, 7, now - 1_000), now)
    expect(applyRecord(restored, forwarded, now, t)).toBe('join')
    expect(applyRecord(forwarded, entry(rec(3, 7, now - 1_000), now), now, t)).toBe('stale')
  })

  it('expires after the TTL, or after the grace once the connection is lost and nothing was heard', () => {
    const now = 5_000_000
    const e = { ...entry(rec(1, 1, now), now), state: 'online' as const }
    expect(expired(e, now + t.ttlMs - 1, t)).toBe(false)
    expect(expired(e, now + t.ttlMs, t)).toBe(true)
    const lost = { ...e, lostAt: now + 100 }
    expect(expired(lost, now + 100 + t.graceMs - 1, t)).toBe(false)
    expect(expired(lost, now + 100 + t.graceMs, t)).toBe(true)
    // heard from again after the loss: the grace does not apply
    expect(expired({ ...lost, lastSeen: now + 200 }, now + 100 + t.graceMs, t)).toBe(false)
  })
})
