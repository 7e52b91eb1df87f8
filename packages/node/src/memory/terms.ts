/**
 * How text becomes index terms (SPEC.md §11.6), the same for notes and queries: split on
 * spaces and punctuation (MiniSearch's default tokenizer, which this index replaced), then
 * lowercased and stemmed with `stemmer` (Porter, English).
 */
import { stemmer } from 'stemmer'

const SPACE_OR_PUNCTUATION = /[\n\r\p{Z}\p{P}]+/u

/** The words of a text, lowercased (the whole text at once: one allocation, not one per word). */
export function tokenize(text: string): string[] {
  return text
    .toLowerCase()
    .split(SPACE_OR_PUNCTUATION)
    .filter(w => w.length > 0)
}

// stemming is most of the cost of indexing a note: remember each word's stem (bounded)
const stems = new Map<string, string>()
export function processTerm(t: string): string | null {
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
