/**
 * Fuzzy query words (SPEC.md §11.6): the bounded Levenshtein distance computed in place agrees
 * with the textbook one on random and edge-case strings, for bounds 0–3; and the index's fuzzy
 * expansion finds exactly the terms within one edit that generating every variant finds.
 */
import { describe, expect, it } from 'vitest'
import { distanceAtMost } from '../src/memory/fuzzy.js'
import { fuzzyTerms } from '../src/memory/score.js'
import { TextIndex } from '../src/memory/text-index.js'
import { rng } from './helpers.js'

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      (d[i] as number[])[j] = Math.min(
        ((d[i - 1] as number[])[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
        ((d[i - 1] as number[])[j] as number) + 1,
        ((d[i] as number[])[j - 1] as number) + 1
      )
  return (d[a.length] as number[])[b.length] as number
}

describe('bounded Levenshtein', () => {
  it('agrees with the full distance, capped at the bound + 1', () => {
    const r = rng(11)
    const word = (alphabet: string): string =>
      Array.from({ length: Math.floor(r() * 12) }, () => alphabet[Math.floor(r() * alphabet.length)] as string).join('')
    const edit = (w: string): string => {
      const i = Math.floor(r() * (w.length + 1))
      const c = 'abxyzé'[Math.floor(r() * 6)] as string
      const op = Math.floor(r() * 3)
      return op === 0 ? w.slice(0, i) + c + w.slice(i) : op === 1 ? w.slice(0, i) + w.slice(i + 1) : w.slice(0, i) + c + w.slice(i + 1)
    }
    const pairs: Array<[string, string]> = [
      ['', ''],
      ['', 'a'],
      ['a', ''],
      ['kitten', 'sitting'],
      ['flaw', 'lawn'],
      ['deploy', 'deploys'],
      ['deploy', 'eploy'],
      ['abc', 'cab'],
      ['staging', 'stagign'],
      ['日本語', '日本誤']
    ]
    for (let i = 0; i < 3000; i++) {
      const a = word(i % 3 === 0 ? 'ab' : 'abcdefgh')
      let b = a
      for (let e = Math.floor(r() * 4); e > 0; e--) b = edit(b)
      pairs.push([a, i % 5 === 0 ? word('abc') : b])
    }
    for (const [a, b] of pairs) {
      const full = levenshtein(a, b)
      for (let k = 0; k <= 3; k++) expect(distanceAtMost(a, b, k), `${a} ${b} k=${k}`).toBe(Math.min(full, k + 1))
    }
  })

  it('the fuzzy expansion of a query word finds the terms within one edit, as generating every variant did', () => {
    const r = rng(12)
    const letters = 'abcdefghij'
    const ix = new TextIndex()
    for (let i = 0; i < 400; i++) {
      const words = Array.from({ length: 4 }, () =>
        Array.from({ length: 4 + Math.floor(r() * 5) }, () => letters[Math.floor(r() * 10)]).join('')
      )
      ix.add(i.toString(16).padStart(16, '0'), { content: words.join(' '), tags: '' })
    }
    const terms = (ix as unknown as { terms: string[] }).terms
    const alphabet = new Set(terms.join(''))
    let found = 0
    for (const t of terms.slice(0, 30)) {
      for (const typo of [`${t.slice(0, 2)}z${t.slice(3)}`, t.slice(1), `${t}a`, t]) {
        // what the previous engine did: every variant of the word over the terms' letters, looked up
        const variants = new Set<string>()
        for (let i = 0; i <= typo.length; i++) {
          if (i < typo.length) variants.add(typo.slice(0, i) + typo.slice(i + 1))
          for (const c of alphabet) {
            variants.add(typo.slice(0, i) + c + typo.slice(i))
            if (i < typo.length) variants.add(typo.slice(0, i) + c + typo.slice(i + 1))
          }
        }
        variants.delete(typo)
        const byVariants = [...variants].filter(v => ix.termId(v) != null).sort()
        const byDistance = terms.filter(x => levenshtein(x, typo) === 1).sort()
        const got = fuzzyTerms(ix, typo, 1)
        expect(got.every(([, d]) => d === 1)).toBe(true)
        const names = got.map(([id]) => ix.term(id)).sort()
        expect(names, typo).toEqual(byVariants)
        expect(names, typo).toEqual(byDistance)
        found += names.length
        // distance 2 finds the terms at 1 and 2
        expect(
          fuzzyTerms(ix, typo, 2)
            .map(([id, d]) => `${ix.term(id)}:${d}`)
            .sort(),
          typo
        ).toEqual(
          terms
            .map(x => [x, levenshtein(x, typo)] as const)
            .filter(([, d]) => d >= 1 && d <= 2)
            .map(([x, d]) => `${x}:${d}`)
            .sort()
        )
      }
    }
    expect(found).toBeGreaterThan(50)
  })
})
