/** The one sanitizer (SPEC.md §13.4): what it strips, what it keeps, how it cuts. */
import { describe, expect, it } from 'vitest'
import { sanitizeJson, sanitizeLine, sanitizeText } from '../src/index.js'

// every code point issue 10 names, plus the old set's edges
const NAMED = [
  0x00, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f, 0x85, 0x9b, 0x9f, 0xad, 0x34f, 0x61c, 0x115f, 0x180e, 0x200b, 0x200c, 0x200d, 0x200e,
  0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069, 0x3164, 0xfe0f, 0xfeff, 0xfff9,
  0xfffa, 0xfffb, 0xe0001, 0xe0041, 0xe007f
]

describe('sanitizeText / sanitizeLine', () => {
  it('removes every named code point and keeps ordinary text, tabs and line feeds', () => {
    for (const cp of NAMED) expect(sanitizeText(`a${String.fromCodePoint(cp)}b`), cp.toString(16)).toBe('ab')
    expect(sanitizeText('héllo\twörld\r\nnext\rline 日本 🎉')).toBe('héllo\twörld\nnext\nline 日本 🎉')
  })

  it('sanitizeLine makes one bounded line and never cuts inside a surrogate pair', () => {
    expect(sanitizeLine('a\nb\tc\u2029d')).toBe('a b cd')
    expect(sanitizeLine('🎉'.repeat(10), 4)).toBe('🎉🎉🎉…')
    expect(sanitizeLine('x'.repeat(300))).toHaveLength(200)
    expect(sanitizeLine('\ud83cx')).toBe('x') // a lone surrogate goes
  })

  it('sanitizeJson cleans every string and key, deep', () => {
    expect(sanitizeJson({ 'k\u202e\n': ['v\u001b[2J', { n: 1, s: '\u200bx' }], t: true })).toEqual({
      'k ': ['v[2J', { n: 1, s: 'x' }],
      t: true
    })
  })
})
