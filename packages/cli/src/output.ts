/**
 * The only module that writes to stdout. Results go to stdout (text or `--json`);
 * diagnostics and errors go to stderr as one clear line.
 */
export function out (text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}

export function outJson (value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

export function note (text: string): void {
  process.stderr.write(`${text}\n`)
}

export class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** Print an error as one line on stderr and pick the exit code. */
export function fail (err: unknown): number {
  const e = err instanceof Error ? err : new Error(String(err))
  const msg = e.message.split('\n')[0] ?? e.name
  process.stderr.write(`claudemesh: ${msg}\n`)
  if (process.env.CLAUDEMESH_DEBUG != null && e.stack != null) process.stderr.write(`${e.stack}\n`)
  return e.name === 'UsageError' ? 2 : 1
}

export function table (rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map(r => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n')
}

export function ago (ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}
