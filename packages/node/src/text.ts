/**
 * The one sanitizer for peer-supplied text (SPEC.md §13.4): names, roles, groups, summaries,
 * status, cwd, host, state keys and values, note contents, tags and authors, ids, metadata.
 * The MCP server strips what it matches before anything reaches the model; the CLI shows the
 * same characters as visible escapes before anything reaches the user's terminal. One
 * definition, so the two surfaces never disagree about what is unsafe.
 */

/**
 * Characters that control a terminal or hide, reorder or split text: C0 controls (but tab and
 * LF, which bodies keep), DEL and C1, the soft hyphen, the combining grapheme joiner, the
 * Arabic letter mark, Hangul and Khmer fillers, Mongolian free variation selectors and vowel
 * separator, zero-width and direction marks, the line and paragraph separators, bidi
 * embeddings, overrides and isolates, invisible operators, variation selectors, the BOM,
 * interlinear annotation controls, shorthand format controls, tag characters and lone
 * surrogates (a cut in the middle of a pair).
 */
export const UNSAFE_CHARS =
  '[\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F' +
  '\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u206F\\u3164\\uFE00-\\uFE0F\\uFEFF\\uFFA0\\uFFF9-\\uFFFB\\uD800-\\uDFFF]' +
  '|[\\u{1BCA0}-\\u{1BCA3}\\u{E0000}-\\u{E007F}\\u{E0100}-\\u{E01EF}]'

const UNSAFE = new RegExp(UNSAFE_CHARS, 'gu')

/** Multi-line text (message bodies, note contents, values): CR LF and CR become LF; tab and LF stay. */
export function sanitizeText(text: string): string {
  return String(text).replace(/\r\n?/g, '\n').replace(UNSAFE, '')
}

/**
 * One line (names, keys, ids, roles…): sanitized, tabs and line breaks become spaces, cut to
 * `max` characters (never inside a surrogate pair) with `…` marking the cut.
 */
export function sanitizeLine(text: string, max = 200): string {
  const line = sanitizeText(text).replace(/[\t\n]/g, ' ')
  if (line.length <= max) return line
  const chars = Array.from(line)
  return chars.length <= max ? line : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`
}

/** A JSON value from a peer, for display: every string and every object key sanitized. */
export function sanitizeJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return sanitizeText(value)
  if (value == null || typeof value !== 'object' || depth > 64) return value
  if (Array.isArray(value)) return value.map(v => sanitizeJson(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[sanitizeLine(k, 256)] = sanitizeJson(v, depth + 1)
  return out
}
