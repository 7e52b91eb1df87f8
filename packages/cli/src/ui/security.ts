/**
 * The rules every request to `claudemesh ui` passes (SPEC.md §19.2), as pure functions over
 * the request's method, path and headers, so each refusal is testable without a browser:
 * - Host is `127.0.0.1:<port>` or `localhost:<port>`: a DNS-rebound name that resolves to
 *   127.0.0.1 still carries its own name in Host and is refused;
 * - the path starts with `/t/<token>/`: every request, the page, its script, its stylesheet
 *   and the event stream included, carries the 256-bit token (relative URLs keep it);
 * - a request with an Origin must come from this server's own origin (a navigation, which
 *   sends none, is let through on its token: a browser opened on the URL comes from elsewhere);
 * - a state-changing request is a POST with a JSON body, the server's Origin and the token
 *   in `X-Claudemesh-Token` (a cross-site form can send neither that header nor that type
 *   without a CORS preflight, which is never answered).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const TOKEN_HEADER = 'x-claudemesh-token'

export interface Refusal {
  status: number
  reason: string
}

export interface Gate {
  port: number
  token: string
}

/** `rest`: the path after `/t/<token>/`; null when the token has no slash after it (the page's own URL without its slash). */
export type Checked = { ok: true; rest: string | null } | ({ ok: false } & Refusal)

/** A fresh 256-bit token, URL-safe (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/** Constant-time comparison: both sides hashed first, so their lengths leak nothing either. */
export function sameToken(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

export function allowedHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`]
}

const header = (headers: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * Check a request.
 * The order matters: a wrong Host is refused before the token is even looked at.
 */
export function checkRequest(gate: Gate, method: string, url: string, headers: Record<string, string | string[] | undefined>): Checked {
  const host = header(headers, 'host') ?? ''
  if (!allowedHosts(gate.port).includes(host.toLowerCase())) return { ok: false, status: 421, reason: 'wrong Host' }
  const m = /^\/t\/([^/?#]*)(?:\/([^?#]*))?(?:[?#].*)?$/.exec(url)
  if (m == null || !sameToken(m[1] ?? '', gate.token)) return { ok: false, status: 403, reason: 'missing or wrong token' }
  const origin = header(headers, 'origin')
  if (origin != null && origin !== `http://${host.toLowerCase()}`) return { ok: false, status: 403, reason: 'wrong Origin' }
  if (method === 'POST') {
    if (origin == null) return { ok: false, status: 403, reason: 'a POST needs an Origin' }
    if (!sameToken(header(headers, TOKEN_HEADER) ?? '', gate.token))
      return { ok: false, status: 403, reason: `a POST needs the token in ${TOKEN_HEADER}` }
    if (!/^application\/json(;|$)/i.test(header(headers, 'content-type') ?? ''))
      return { ok: false, status: 415, reason: 'a POST body is JSON' }
  } else if (method !== 'GET' && method !== 'HEAD') {
    return { ok: false, status: 405, reason: 'only GET and POST' }
  }
  return { ok: true, rest: m[2] ?? null }
}

/** Headers on every answer: a strict CSP (no inline script, nothing from elsewhere), no sniffing, no framing, no referrer (the URL holds the token). */
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin'
}
