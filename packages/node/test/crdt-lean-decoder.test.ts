/**
 * The replica's lean update decoder (state/lean-decoder.ts) makes the very document Yjs's own
 * decoder makes, from any update: every kind of value (nested objects and arrays, ASCII and
 * other text, a BOM, numbers, bigints, bytes, null, undefined), overwrites and deletions; and
 * it refuses what lib0 refuses (text that is not UTF-8) or cannot hold (more items than bytes).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { LeanDecoderV1 } from '../src/state/lean-decoder.js'
import { rng } from './helpers.js'

const TEXTS = [
  '',
  'a',
  'peer3',
  'bug',
  '12D3KooWNox8FVEfD6AiKQqHyF8T94q83FkHCqVhKfkAkTigrDxu',
  'héllo',
  '日本語のメモ',
  '\uFEFFbom',
  '🙂 emoji',
  'x'.repeat(65),
  'é'.repeat(70)
]

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 8 : 10))
  switch (k) {
    case 0:
      return TEXTS[Math.floor(r() * TEXTS.length)] as string
    case 1:
      return Math.floor(r() * 2 ** 40) - 2 ** 39
    case 2:
      return r() < 0.8
        ? r() * 1e6 - 5e5
        : ([-0, Number.NaN, Number.POSITIVE_INFINITY, 1_733_000_000_000, 2 ** 53 - 1] as const)[Math.floor(r() * 5)]
    case 3:
      return r() < 0.5
    case 4:
      return null
    case 5:
      return BigInt(Math.floor(r() * 1e9)) * 1_000_000_007n
    case 6:
      return Uint8Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * 256))
    case 7:
      return `${TEXTS[Math.floor(r() * TEXTS.length)]}-${Math.floor(r() * 100)}`
    case 8:
      return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = Math.floor(r() * 5); i > 0; i--) o[TEXTS[Math.floor(r() * TEXTS.length)] as string] = value(r, depth + 1)
      return o
    }
  }
}

function lean(update: Uint8Array): Y.Doc {
  const doc = new Y.Doc()
  Y.applyUpdateV2(doc, update, undefined, LeanDecoderV1)
  return doc
}

describe('lean update decoder', () => {
  it('makes the same document as Yjs from random values, overwrites and deletions', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed)
      const doc = new Y.Doc()
      const notes = doc.getMap('memory')
      const state = doc.getMap('state')
      for (let i = 0; i < 200; i++) {
        const m = r() < 0.7 ? notes : state
        const key = r() < 0.3 ? (TEXTS[Math.floor(r() * TEXTS.length)] as string) : `k${Math.floor(r() * 150)}`
        if (r() < 0.1) m.delete(key)
        else
          m.set(
            key,
            r() < 0.5
              ? { content: TEXTS[i % TEXTS.length], tags: ['bug', 'todo'].slice(0, i % 3), by: 'peer1', at: i, nested: value(r, 0) }
              : value(r, 0)
          )
      }
      // undefined is only held inside an array (a map entry set to it reads as absent)
      notes.set('u', [undefined, 1, undefined])
      const update = Y.encodeStateAsUpdate(doc)
      const expected = new Y.Doc()
      Y.applyUpdate(expected, update)
      const got = lean(update)
      expect(got.getMap('memory').toJSON()).toEqual(expected.getMap('memory').toJSON())
      expect(got.getMap('state').toJSON()).toEqual(expected.getMap('state').toJSON())
      expect(Buffer.from(Y.encodeStateAsUpdate(got)).equals(Buffer.from(update))).toBe(true)
      expect(got.getMap('memory').get('u')).toEqual([undefined, 1, undefined])
    }
  })

  it('reads many notes with the same author and tags as Yjs does', () => {
    const doc = new Y.Doc()
    const m = doc.getMap('memory')
    for (let i = 0; i < 50; i++) m.set(`n${i}`, { content: `note ${i}`, tags: ['bug'], author: 'peer1' })
    const got = lean(Y.encodeStateAsUpdate(doc)).getMap('memory')
    for (let i = 0; i < 50; i++) expect(got.get(`n${i}`)).toEqual({ content: `note ${i}`, tags: ['bug'], author: 'peer1' })
  })

  it('refuses text that is not UTF-8, and an array longer than the bytes left', () => {
    const doc = new Y.Doc()
    doc.getMap('memory').set('k', 'é')
    const update = Y.encodeStateAsUpdate(doc)
    // 'é' is C3 A9: make it C3 41 (a lead byte without its continuation)
    const at = Buffer.from(update).indexOf(Buffer.from([0xc3, 0xa9]))
    expect(at).toBeGreaterThan(0)
    const bad = update.slice()
    bad[at + 1] = 0x41
    expect(() => Y.applyUpdate(new Y.Doc(), bad)).toThrow()
    expect(() => lean(bad)).toThrow()

    const d2 = new Y.Doc()
    d2.getMap('memory').set('k', [1])
    const u2 = Y.encodeStateAsUpdate(d2)
    // the array's tag (117) is followed by its length 1: claim 100 instead
    const arr = Buffer.from(u2).indexOf(Buffer.from([117, 1, 125, 1]))
    expect(arr).toBeGreaterThan(0)
    const long = u2.slice()
    long[arr + 1] = 100
    expect(() => lean(long)).toThrow(/more items than bytes/)
  })

  it("Yjs's own value lists (patches/yjs): made at their length, and a length above the bytes left refused at once", () => {
    // the patch is what the install applied (pnpm patchedDependencies), in the build we load
    expect(readFileSync(fileURLToPath(import.meta.resolve('yjs')), 'utf8')).toContain('claudemesh: made at its length')
    const doc = new Y.Doc()
    doc.getMap('memory').set('k', 'x')
    const update = Buffer.from(Y.encodeStateAsUpdate(doc))
    // the item's value list: its length 1, then the string 'x' (tag 119, length 1, 0x78)
    const at = update.indexOf(Buffer.from([1, 119, 1, 0x78]))
    expect(at).toBeGreaterThan(0)
    // claim 30 million values: refused before a list that long is made (240 MB), by both decoders
    const bad = Buffer.concat([update.subarray(0, at), Buffer.from([0x80, 0x87, 0xa7, 0x0e]), update.subarray(at + 1)])
    const heap = process.memoryUsage().heapUsed
    expect(() => Y.applyUpdate(new Y.Doc(), bad)).toThrow(/Unexpected end of array/)
    expect(() => lean(bad)).toThrow(/Unexpected end of array/)
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(64 * 1024 * 1024)
  })
})
