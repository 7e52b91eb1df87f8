/**
 * Structured logs: one JSON object a line on stderr (`{"t":…,"level":…,"msg":…,…}`), ready
 * for journald, `docker logs` or any log shipper. Never a key, secret or message content.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error'
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }

export interface Log {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
}

export function createLog(
  level: Level = 'info',
  write: (line: string) => void = line => {
    process.stderr.write(line)
  }
): Log {
  const at =
    (l: Level) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      if (RANK[l] < RANK[level]) return
      write(`${JSON.stringify({ t: new Date().toISOString(), level: l, msg, ...fields })}\n`)
    }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
