/**
 * The only module that writes to stdout. Results go to stdout (text or `--json`);
 * diagnostics and errors go to stderr as one clear line. Human-readable text never carries a
 * terminal control from a peer: `esc` shows the unsafe characters of the one sanitizer
 * (`@claudemesh/node` text.ts: ESC, BEL, CR, NUL, bidi, zero-width…) as visible escapes, and
 * every line printed here goes through it. `--json` prints exact JSON.
 */
import { UNSAFE_CHARS } from '@claudemesh/node/client'

const UNSAFE_OR_BREAK = new RegExp(`${UNSAFE_CHARS}|[\\t\\n]`, 'gu')
const UNSAFE = new RegExp(UNSAFE_CHARS, 'gu')
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function visible(ch: string): string {
  const named = NAMED[ch]
  if (named != null) return named
  const cp = ch.codePointAt(0) ?? 0
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`
  return `\\u{${cp.toString(16)}}`
}

/**
 * Peer text made safe for a terminal: unsafe characters become visible escapes (`\x1b`,
 * `\r`, `\u202e`). One line by default (LF and tab escaped too: table cells, names, keys);
 * `multiline` keeps LF and tab (message bodies, note contents, values).
 */
export function esc(text: unknown, multiline = false): string {
  return String(text ?? '').replace(multiline ? UNSAFE : UNSAFE_OR_BREAK, visible)
}

export function out(text: string): void {
  const safe = esc(text, true)
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`)
}

export function outJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

export function note(text: string): void {
  process.stderr.write(`${esc(text, true)}\n`)
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** Print an error as one line on stderr and pick the exit code. */
export function fail(err: unknown): number {
  const e = err instanceof Error ? err : new Error(String(err))
  const msg = esc(e.message.split('\n')[0] ?? e.name)
  process.stderr.write(`claudemesh: ${msg}\n`)
  if (process.env.CLAUDEMESH_DEBUG != null && e.stack != null) process.stderr.write(`${e.stack}\n`)
  return e.name === 'UsageError' ? 2 : 1
}

/** Columns padded to their widest cell; every cell is one line of escaped text. */
export function table(rows: string[][]): string {
  rows = rows.map(r => r.map(c => esc(c)))
  const widths: number[] = []
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length)
    })
  return rows
    .map(r =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd()
    )
    .join('\n')
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}
