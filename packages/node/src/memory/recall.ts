/**
 * Recall without freezing the node (SPEC.md §11.6). MiniSearch searches synchronously, and a
 * query's cost grows with its words, their fuzzy and prefix expansions and the notes each
 * matches: a 1,000-character query with edit distance up to 6 held the event loop for 23 s.
 * So a query is bounded (characters, distinct words, edit distance, prefix length) and scored
 * in slices of a few ms with the event loop free between them (score.ts), ranked as MiniSearch
 * ranks an OR query.
 */
import MiniSearch from 'minisearch'
import { stemmer } from 'stemmer'
import { InvalidMessageError } from '../errors.js'
import { docId, scoreTerm, Slices } from './score.js'

export { Slices }

/** Longest query, in UTF-16 code units; longer is refused with a clear error. */
export const MAX_QUERY_CHARS = 256
/** Most distinct words (after stemming) in one query. */
export const MAX_QUERY_TERMS = 16
/** Largest edit distance a word is matched with (words of 5–16 letters; distance 2 cost 3–20 ms a word here against ~1 ms). */
export const MAX_FUZZY = 1
/** The last word matches as a prefix only from this many letters (a shorter one expands to half the vocabulary). */
export const MIN_PREFIX = 3

// stemming is a third of index building: remember each word's stem (bounded)
const stems = new Map<string, string>()
export const processTerm = (t: string): string | null => {
  const w = t.toLowerCase()
  if (w.length === 0) return null
  let s = stems.get(w)
  if (s == null) {
    s = stemmer(w)
    if (stems.size > 200_000) stems.clear()
    stems.set(w, s)
  }
  return s
}

const tokenize = MiniSearch.getDefault('tokenize') as (text: string) => string[]

export interface QueryWord { word: string, stem: string, prefix: boolean, fuzzy: number }

/** Field boosts of a search (tags count twice). */
export const BOOSTS = { content: 1, tags: 2 }

/** The words a query searches for, or `InvalidMessageError` when it is over the bounds. */
export function parseQuery (query: string): QueryWord[] {
  if (query.length > MAX_QUERY_CHARS) throw new InvalidMessageError(`a recall query is at most ${MAX_QUERY_CHARS} characters (this one has ${query.length}); search for a few key words`)
  const words = tokenize(query).filter(w => w.length > 0)
  const byStem = new Map<string, string>()
  for (const w of words) {
    const s = processTerm(w)
    if (s != null && !byStem.has(s)) byStem.set(s, w)
  }
  if (byStem.size > MAX_QUERY_TERMS) throw new InvalidMessageError(`a recall query has at most ${MAX_QUERY_TERMS} different words (this one has ${byStem.size}); search for a few key words`)
  // the last word is the one being typed: it matches as a prefix
  const last = words.length > 0 ? processTerm(words[words.length - 1] as string) : null
  return [...byStem].map(([stem, word]) => ({ word, stem, prefix: stem === last && stem.length >= MIN_PREFIX, fuzzy: fuzzyDistance(stem) }))
}

function fuzzyDistance (stem: string): number {
  return stem.length < 5 || stem.length > 16 ? 0 : MAX_FUZZY
}

/**
 * Search word by word, scoring in time slices (score.ts); hits ranked best first, filtered by
 * `keep`. Like MiniSearch's OR query: a note's score is the sum over the words it matches, times
 * the number of words it matches.
 */
export async function slicedSearch (index: MiniSearch, words: QueryWord[], keep?: (id: string) => boolean, slices = new Slices()): Promise<Array<{ id: string, score: number }>> {
  const total = new Map<number, { score: number, words: number, last: number }>()
  for (const [i, w] of words.entries()) {
    await scoreTerm(index, w.stem, { prefix: w.prefix, fuzzy: w.fuzzy, boosts: BOOSTS }, (doc, score) => {
      const t = total.get(doc)
      if (t == null) total.set(doc, { score, words: 1, last: i })
      else {
        t.score += score
        if (t.last !== i) t.words++
        t.last = i
      }
    }, slices)
    await slices.tick(true)
  }
  const out: Array<{ id: string, score: number }> = []
  for (const [doc, t] of total) {
    await slices.tick()
    const id = docId(index, doc)
    if (id != null && (keep == null || keep(id))) out.push({ id, score: t.score * t.words })
  }
  out.sort((a, b) => b.score - a.score)
  slices.end()
  return out
}
