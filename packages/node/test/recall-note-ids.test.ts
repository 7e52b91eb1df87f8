/**
 * The recall index's note ids in typed arrays (memory/note-ids.ts): under adds, removals and
 * re-adds of hex and other ids, and from a snapshot's bytes, every lookup answers as a Map does.
 */
import { describe, expect, it } from 'vitest'
import { NoteIds } from '../src/memory/note-ids.js'
import { rng } from './helpers.js'

describe('note ids', () => {
  it('answers as a Map under churn, and loads a snapshot’s hex ids (refusing a bad one or one twice)', () => {
    const r = rng(21)
    const ids = new NoteIds()
    const oracle = new Map<string, number>()
    const pool = Array.from({ length: 3000 }, (_, i) =>
      i % 10 === 0
        ? `note-${i}`
        : Math.floor(r() * 2 ** 32)
            .toString(16)
            .padStart(8, '0') + i.toString(16).padStart(8, '0')
    )
    for (let op = 0; op < 40_000; op++) {
      const id = pool[Math.floor(r() * pool.length)] as string
      if (oracle.has(id) && r() < 0.5) {
        ids.delete(id)
        oracle.delete(id)
      } else if (!oracle.has(id)) {
        const doc = ids.add(id)
        expect(ids.idOf(doc)).toBe(id)
        oracle.set(id, doc)
      }
      if (op % 997 === 0) for (const p of pool) expect(ids.get(p)).toBe(oracle.get(p))
    }
    for (const p of pool) expect(ids.get(p)).toBe(oracle.get(p))
    for (const [id, doc] of oracle) expect(ids.idOf(doc)).toBe(id)

    const hex = pool.filter(p => p.length === 16 && !p.startsWith('note'))
    const loaded = new NoteIds()
    loaded.loadHex(Buffer.from(hex.join(''), 'latin1'), hex.length)
    hex.forEach((h, d) => {
      expect(loaded.get(h)).toBe(d)
      expect(loaded.idOf(d)).toBe(h)
    })
    expect(loaded.get('ffffffffffffffff')).toBeUndefined()
    expect(() => new NoteIds().loadHex(Buffer.from(`${hex[0]}${hex[0]}`, 'latin1'), 2)).toThrow(/a note twice/)
    expect(() => new NoteIds().loadHex(Buffer.from('0123456789abcdeG', 'latin1'), 1)).toThrow(/16 hex/)
    expect(() => new NoteIds().loadHex(Buffer.from('0123456789ABCDEF', 'latin1'), 1)).toThrow(/16 hex/)
  })
})
