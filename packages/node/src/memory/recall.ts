/**
 * Recall without freezing the node (SPEC.md §11.6). A query's cost grows with its words, their
 * fuzzy and prefix expansions and the notes each matches (with MiniSearch's own search, a
 * 1,000-character query with edit distance up to 6 held the event loop for 23 s), so a query
 * is bounded (characters, distinct words, edit distance, prefix length) and scored in slices
 * of a few ms with the event loop free between them (score.ts).
 */
import { InvalidMessageError } from '../errors.js'
import { type Hit, search, Slices } from './score.js'
import type { TextIndex } from './text-index.js'
import { processTerm, tokenize } from './terms.js'

export { processTerm, Slices }

/** Longest query, in UTF-16 code units; longer is refused with a clear error. */
export const MAX_QUERY_CHARS = 256
/** Most distinct words (after stemming) in one query. */
export const MAX_QUERY_TERMS = 16
/** Largest edit distance a word is matched with (words of 5–16 letters; distance 2 cost 3–20 ms a word here against ~1 ms). */
export const MAX_FUZZY = 1
/** The last word matches as a prefix only from this many letters (a shorter one expands to half the vocabulary). */
export const MIN_PREFIX = 3

export interface QueryWord {
  word: string
  stem: string
  prefix: boolean
  fuzzy: number
}

/** The words a query searches for, or `InvalidMessageError` when it is over the bounds. */
export function parseQuery(query: string): QueryWord[] {
  if (query.length > MAX_QUERY_CHARS)
    throw new InvalidMessageError(
      `a recall query is at most ${MAX_QUERY_CHARS} characters (this one has ${query.length}); search for a few key words`
    )
  const words = tokenize(query)
  const byStem = new Map<string, string>()
  for (const w of words) {
    const s = processTerm(w)
    if (s != null && !byStem.has(s)) byStem.set(s, w)
  }
  if (byStem.size > MAX_QUERY_TERMS)
    throw new InvalidMessageError(
      `a recall query has at most ${MAX_QUERY_TERMS} different words (this one has ${byStem.size}); search for a few key words`
    )
  // the last word is the one being typed: it matches as a prefix
  const last = words.length > 0 ? processTerm(words[words.length - 1] as string) : null
  return [...byStem].map(([stem, word]) => ({ word, stem, prefix: stem === last && stem.length >= MIN_PREFIX, fuzzy: fuzzyDistance(stem) }))
}

function fuzzyDistance(stem: string): number {
  return stem.length < 5 || stem.length > 16 ? 0 : MAX_FUZZY
}

/** The best `limit` notes for the query's words that pass `keep`, best first. */
export async function slicedSearch(
  index: TextIndex,
  words: QueryWord[],
  limit: number,
  keep?: (id: string) => boolean,
  slices = new Slices()
): Promise<Hit[]> {
  return await search(index, words, limit, keep, slices)
}
