/**
 * Peer text reaches the model only inside an untrusted-content fence (SPEC.md §13.4): a
 * random delimiter per message that the peer cannot predict (so it cannot close the fence
 * early), the verified sender's identity in the header, and the characters of the one
 * sanitizer (`@claudemesh/node` text.ts) removed. The words stay data: nothing here asks the
 * model to act on them.
 */
import { randomBytes } from 'node:crypto'
import { sanitizeLine, sanitizeText } from '@claudemesh/node'

export { sanitizeText as sanitize } from '@claudemesh/node'

/** One line of peer text shown outside a fence (names, roles, keys, ids): sanitized and bounded. */
export function line(text: string | undefined, max = 200): string {
  return sanitizeLine(text ?? '', max)
}

/** Attribute values: sanitized, single line, no quotes or angle brackets, bounded. */
export function attr(text: string, max = 200): string {
  return sanitizeLine(text.replace(/["<>]/g, ' '), max)
}

/**
 * A body cannot hold what reads like one of our delimiters: `<<` before a fence kind (with or
 * without `end-`) becomes `< <`, so even a guessed tag cannot open or close a block.
 */
const DELIMITER = /<<(?=\s*(?:end-)?(?:peer-message|peer-note|peer-task|peer-context|state-change)\b)/gi

export interface FenceHeader {
  [key: string]: string | undefined
}

export function fence(kind: string, header: FenceHeader, body: string): string {
  const tag = randomBytes(6).toString('hex')
  const attrs = Object.entries(header)
    .filter(([, v]) => v != null && v !== '')
    .map(([k, v]) => `${k}="${attr(v ?? '')}"`)
    .join(' ')
  return `<<${kind}-${tag} ${attrs}>>\n${sanitizeText(body).replace(DELIMITER, '< <')}\n<<end-${kind}-${tag}>>`
}
