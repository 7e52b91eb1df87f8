/** Flood limits set by the local user (SPEC.md §8.8): parsed, bounded, refused with one line. */
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createMeshNode } from '../src/index.js'
import { DEFAULT_LIMITS } from '../src/messaging/flood.js'
import { checkLimits, LIMIT_NAMES, parseLimits } from '../src/messaging/limits.js'
import { homeWithMesh } from './helpers.js'

const refused = (specs: string[]): string => {
  try {
    parseLimits(specs)
  } catch (err) {
    expect((err as Error).name).toBe('InvalidLimitError')
    expect((err as Error).message).not.toContain('\n')
    return (err as Error).message
  }
  throw new Error(`${specs.join(' ')} was accepted`)
}

describe('flood limits from name=value settings', () => {
  it('sets what is named, keeps the defaults of the rest, and takes unit suffixes', () => {
    const l = parseLimits(['dm.rate=100', 'dm.byteBurst=16m', 'senderUnread=5000', 'blockMs=2min', 'graceMs=1.5s', 'group.rate=0.5'])
    expect(l.dm).toEqual({ ...DEFAULT_LIMITS.dm, rate: 100, byteBurst: 16 << 20 })
    expect(l.group).toEqual({ ...DEFAULT_LIMITS.group, rate: 0.5 })
    expect(l.senderUnread).toBe(5000)
    expect(l.blockMs).toBe(120_000)
    expect(l.graceMs).toBe(1500)
    expect(l.totalUnread).toBeUndefined()
    // the last setting of a name wins
    expect(parseLimits(['totalUnread=10', 'totalUnread=20']).totalUnread).toBe(20)
    expect(checkLimits(l)).toMatchObject({ ...DEFAULT_LIMITS, ...l })
    expect(LIMIT_NAMES).toHaveLength(16)
    // room for "no limit" (the benchmarks' 2^40)
    const big = 2 ** 40
    expect(
      checkLimits({ dm: { rate: big, burst: big, byteRate: big, byteBurst: big }, senderUnread: big, totalUnreadBytes: big }).dm.rate
    ).toBe(big)
  })

  it('refuses unknown names, missing or malformed values and values out of bounds, naming the setting', () => {
    expect(refused(['dm.rat=1'])).toMatch(/^unknown limit "dm\.rat": use one of dm\.rate, /)
    expect(refused(['dm.rate'])).toBe('limit dm.rate: give a value, as dm.rate=<number>')
    expect(refused(['dm.rate=fast'])).toBe('limit dm.rate: "fast" is not a number of messages/s')
    expect(refused(['dm.rate=-1'])).toMatch(/^limit dm\.rate: "-1" is not a number/)
    expect(refused(['dm.rate=0'])).toBe('limit dm.rate: 0 is out of range (a number above 0 up to 1099511627776 messages/s)')
    expect(refused(['dm.burst=0'])).toMatch(/^limit dm\.burst: 0 is out of range \(a whole number from 1 /)
    expect(refused(['senderUnread=1e9999'])).toMatch(/^limit senderUnread: "1e9999" is not a number/)
    expect(refused(['blockMs=10'])).toMatch(/^limit blockMs: 10 is out of range \(a whole number from 1000 /)
    expect(refused(['totalUnreadBytes=2tb'])).toMatch(/suffixes: k, m, g/)
    expect(refused(['senderUnread=5k'])).toMatch(/^limit senderUnread: "5k" is not a number of messages$/)
    expect(refused(['graceMs=2d'])).toMatch(/suffixes: s, min, h/)
  })

  it('a node given limits out of bounds does not start', async () => {
    const { home, cleanup } = await homeWithMesh()
    try {
      await expect(createMeshNode({ home, mesh: 'test', session: randomUUID(), name: 'x', limits: { senderUnread: 0 } })).rejects.toThrow(
        /^limit senderUnread: 0 is out of range/
      )
      await expect(
        createMeshNode({
          home,
          mesh: 'test',
          session: randomUUID(),
          name: 'x',
          limits: { dm: { rate: Number.NaN, burst: 1, byteRate: 1, byteBurst: 1 } }
        })
      ).rejects.toThrow(/^limit dm\.rate: NaN is out of range/)
    } finally {
      await cleanup()
    }
  })
})
