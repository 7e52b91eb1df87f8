/**
 * The recall index (SPEC.md §11.6, issue 12 item 3): BM25+ ranking as MiniSearch ranked, tags ×2,
 * the last word a prefix, fuzzy words at edit distance 1; and an index changed note by note
 * (adds, rewrites, removals, compaction) ranks exactly as one built afresh from what is left.
 */
import { describe, expect, it } from 'vitest'
import { parseQuery, slicedSearch } from '../src/memory/recall.js'
import { TextIndex } from '../src/memory/text-index.js'
import { rng } from './helpers.js'

async function ids(ix: TextIndex, query: string, limit = 10): Promise<string[]> {
  return (await slicedSearch(ix, parseQuery(query), limit)).map(h => h.id)
}

function indexOf(notes: Record<string, [string, string?]>): TextIndex {
  const ix = new TextIndex()
  for (const [id, [content, tags]] of Object.entries(notes)) ix.add(id, { content, tags: tags ?? '' })
  return ix
}

describe('recall index', () => {
  it('ranks by relevance: more query words, rarer words, shorter notes, tags count twice', async () => {
    const ix = indexOf({
      both: ['the staging database moved to host db-2'],
      db: ['the production database is on host db-1 behind the proxy with a long list of other words in it'],
      dbShort: ['database tuning'],
      staging: ['staging deploys run every Friday'],
      tagged: ['notes about the proxy', 'database'],
      other: ['nothing to see here']
    })
    const r = await ids(ix, 'staging database')
    expect(r[0]).toBe('both') // matches both words
    expect(r).not.toContain('other')
    expect(r.indexOf('dbShort')).toBeLessThan(r.indexOf('db')) // a short note mentioning it beats a long one
    expect(r.indexOf('tagged')).toBeLessThan(r.indexOf('db')) // the tag counts twice
    expect(new Set(r)).toEqual(new Set(['both', 'db', 'dbShort', 'staging', 'tagged']))
  })

  it('stems words, matches the last word as a prefix from 3 letters, and fuzzy words at distance 1', async () => {
    const ix = indexOf({
      n1: ['Deploys run from the release branch'],
      n2: ['the flaky test is test_login_timeout'],
      n3: ['Deployment credentials live in the vault'],
      n4: ['database migrations']
    })
    expect((await ids(ix, 'deploying')).sort()).toEqual(['n1', 'n3']) // deploi exactly, deploy at distance 1
    expect(await ids(ix, 'datab')).toEqual(['n4']) // prefix of the last word
    expect(await ids(ix, 'datab release')).toEqual(['n1']) // …only the last
    expect(await ids(ix, 'da')).toEqual([]) // under 3 letters: no prefix
    expect(await ids(ix, 'flakey tset')).toEqual(['n2']) // flakei ~ flaki
    expect(await ids(ix, 'migratoin')).toEqual([]) // a swap is distance 2
    expect(await ids(ix, 'databse')).toEqual(['n4']) // one letter dropped
    expect(ix.size).toBe(4)
  })

  it('an index changed note by note ranks exactly as one built afresh from the same notes', async () => {
    const r = rng(12)
    const words =
      'alpha beta gamma delta epsilon zeta theta kappa lambda omicron sigma omega deploy staging database cache server client'.split(' ')
    const text = (): string =>
      Array.from({ length: 3 + Math.floor(r() * 12) }, () => words[Math.floor(r() * words.length)] as string).join(' ')
    const live = new Map<string, { content: string; tags: string }>()
    const ix = new TextIndex()
    for (let op = 0; op < 4000; op++) {
      const id = `n${Math.floor(r() * 600)}`
      if (r() < 0.3) {
        ix.remove(id)
        live.delete(id)
      } else {
        const note = { content: text(), tags: r() < 0.3 ? (words[Math.floor(r() * words.length)] as string) : '' }
        ix.add(id, note) // a rewrite when the id is there
        live.set(id, note)
      }
    }
    const fresh = new TextIndex()
    for (const [id, note] of live) fresh.add(id, note)
    expect(ix.size).toBe(live.size)
    expect(ix.capacity).toBeGreaterThan(fresh.capacity) // removals left dead documents behind
    const canon = (hs: Array<{ id: string; score: number }>): string[] => hs.map(h => `${h.score.toFixed(9)} ${h.id}`).sort()
    for (const q of ['alpha', 'deploy staging', 'databas', 'omega sigma lambd', 'kappa thet', 'servers', 'cachr client']) {
      const a = await slicedSearch(ix, parseQuery(q), 1000)
      const b = await slicedSearch(fresh, parseQuery(q), 1000)
      expect(a.length, q).toBeGreaterThan(0)
      expect(canon(a), q).toEqual(canon(b))
      // and every hit is a live note
      for (const h of a) expect(live.has(h.id), q).toBe(true)
    }
  })

  it('asks `keep` and returns the best `limit` that pass it, best first', async () => {
    const notes: Record<string, [string]> = {}
    // the longer the note (in distinct words), the lower it ranks
    for (let i = 0; i < 50; i++) notes[`n${i}`] = [`deploy ${Array.from({ length: i }, (_, k) => `w${k}`).join(' ')}`]
    const ix = indexOf(notes)
    const hits = await slicedSearch(ix, parseQuery('deploy'), 3, id => Number(id.slice(1)) % 2 === 1)
    expect(hits.map(h => h.id)).toEqual(['n1', 'n3', 'n5'])
    expect(hits[0]?.score).toBeGreaterThan(hits[1]?.score as number)
  })

  it('filters by author and exact tags from what it indexed, rewrites included', async () => {
    const ix = new TextIndex()
    ix.add('a', { content: 'deploy the api', tags: 'deploy infra' }, { author: 'alice', tags: ['deploy', 'infra'] })
    ix.add('b', { content: 'deploy the web', tags: 'deploys' }, { author: 'bob', tags: ['deploys'] })
    ix.add('c', { content: 'deploy nothing', tags: '' }, { author: 'alice', tags: [] })
    const q = parseQuery('deploy')
    const by = async (author: string | undefined, tags: string[]): Promise<string[] | undefined> => {
      const keep = ix.matcher(author, tags)
      return keep == null ? undefined : (await slicedSearch(ix, q, 10, keep)).map(h => h.id).sort()
    }
    expect(await by('alice', [])).toEqual(['a', 'c'])
    expect(await by(undefined, ['deploy'])).toEqual(['a']) // exact: 'deploys' is another tag
    expect(await by('alice', ['deploy', 'infra'])).toEqual(['a'])
    expect(await by('bob', ['infra'])).toEqual([])
    expect(await by('carol', [])).toBeUndefined() // no note of carol's was ever indexed
    expect(await by(undefined, ['nope'])).toBeUndefined()
    ix.add('b', { content: 'deploy the web', tags: 'deploy' }, { author: 'bob', tags: ['deploy'] }) // a rewrite
    expect(await by(undefined, ['deploy'])).toEqual(['a', 'b'])
    ix.remove('a')
    expect(await by('alice', [])).toEqual(['c'])
  })
})
