/**
 * Peer text reaches the model only inside an untrusted-content fence (SPEC.md §13.4): a
 * random delimiter per message that the peer cannot predict (so it cannot close the fence
 * early), the verified sender's identity in the header, and control and zero-width
 * characters removed. The words stay data: nothing here asks the model to act on them.
 */
import { randomBytes } from 'node:crypto'

// C0/C1 controls except \t and \n, zero-width and bidi controls, BOM, and tag characters
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF]|[\u{E0000}-\u{E007F}]/gu

export function sanitize (text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(UNSAFE, '')
}

/** Attribute values: sanitized, single line, no quotes, bounded. */
export function attr (text: string, max = 200): string {
  return sanitize(text).replace(/[\n"<>]/g, ' ').slice(0, max)
}

export interface FenceHeader { [key: string]: string | undefined }

export function fence (kind: string, header: FenceHeader, body: string): string {
  const tag = randomBytes(6).toString('hex')
  const attrs = Object.entries(header).filter(([, v]) => v != null && v !== '').map(([k, v]) => `${k}="${attr(v ?? '')}"`).join(' ')
  return `<<${kind}-${tag} ${attrs}>>\n${sanitize(body)}\n<<end-${kind}-${tag}>>`
}
