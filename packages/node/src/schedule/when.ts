/**
 * When a schedule fires (SPEC.md §18.2): `at` (an ISO 8601 time or epoch milliseconds), `in`
 * (a duration such as `90s`, `10m`, `1h30m`, `2d`) or `cron` (five fields, minute first, in the
 * node's time zone, read by croner). Each is checked here, once, for every surface.
 */
import { existsSync, readlinkSync } from 'node:fs'
import { Cron } from 'croner'
import { InvalidMessageError } from '../errors.js'
import { MAX_AHEAD_MS, MAX_CRON_CHARS, PAST_GRACE_MS } from './constants.js'

const UNIT: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 7 * 86_400_000 }

/** `1h30m` → 5400000; a bare number is seconds. Throws InvalidMessageError. */
export function parseDuration(text: string): number {
  const t = text.trim().toLowerCase()
  if (/^\d+$/.test(t)) return Number(t) * 1000
  if (!/^(\d+[smhdw])+$/.test(t)) throw new InvalidMessageError(`"${text.slice(0, 40)}" is not a duration: use e.g. 90s, 10m, 1h30m, 2d`)
  let ms = 0
  for (const [, n, u] of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * (UNIT[u ?? 's'] ?? 0)
  return ms
}

/** An ISO 8601 time (with a zone or Z; without one it is local time) or epoch milliseconds. */
export function parseTime(at: string | number): number {
  const ms = typeof at === 'number' ? at : /^\d{10,}$/.test(at.trim()) ? Number(at.trim()) : Date.parse(at)
  if (!Number.isFinite(ms))
    throw new InvalidMessageError(`"${String(at).slice(0, 40)}" is not a time: use ISO 8601, e.g. 2026-05-01T09:00:00Z`)
  return ms
}

/** The first due time of a one-shot schedule, checked against now. */
export function firstDue(when: { at?: string | number; in?: string }, now = Date.now()): number {
  const due = when.at != null ? parseTime(when.at) : now + parseDuration(when.in ?? '')
  if (when.in != null && due <= now) throw new InvalidMessageError('`in` must be longer than zero')
  if (due < now - PAST_GRACE_MS) throw new InvalidMessageError(`${new Date(due).toISOString()} is in the past`)
  if (due > now + MAX_AHEAD_MS) throw new InvalidMessageError(`${new Date(due).toISOString()} is more than a year ahead`)
  return due
}

/** The next occurrence of `cron` strictly after `after`, or null when there is none within a year. */
export function nextCron(cron: string, tz: string | undefined, after: number): number | null {
  // the node's own zone is read with Date's local getters; croner reads any other through an
  // Intl.DateTimeFormat, which loads ICU's formatting data (~20 ms, ~8 MB of RSS for the process's life)
  const next = pattern(cron, tz === localZone() ? undefined : tz).nextRun(new Date(after))
  return next == null || next.getTime() > after + MAX_AHEAD_MS ? null : next.getTime()
}

/** Check a cron expression; returns its first occurrence after `now`. */
export function checkCron(cron: string, tz: string | undefined, now = Date.now()): number {
  if (cron.length > MAX_CRON_CHARS) throw new InvalidMessageError(`a cron expression is at most ${MAX_CRON_CHARS} characters`)
  const next = nextCron(cron, tz, now)
  if (next == null) throw new InvalidMessageError(`cron "${cron}" never fires within a year`)
  return next
}

function pattern(cron: string, tz: string | undefined): Cron {
  try {
    return new Cron(cron.trim(), { mode: '5-part', paused: true, ...(tz != null ? { timezone: tz } : {}) })
  } catch (err) {
    throw new InvalidMessageError(
      `invalid cron "${cron.slice(0, 64)}": ${(err as Error).message.replace(/^CronPattern: /, '')} (five fields: minute hour day-of-month month day-of-week)`
    )
  }
}

/** An Olson name: `Europe/Paris`, `UTC`, `Etc/GMT+5`; not a POSIX rule such as `EST5EDT` or a path. */
const OLSON = /^[A-Za-z][A-Za-z_+-]*(\/[A-Za-z0-9_+-]+)*$/
let zone: { tz: string | undefined; name: string | undefined } | undefined

/**
 * The node's time zone name (cron fields are read in it, and it is stored with the schedule),
 * found as ICU finds the zone that Date's local getters use: `TZ` when it holds an Olson name
 * (a leading `:`, `posix/` or `right/` dropped), else the target of `/etc/localtime` after
 * `zoneinfo/`. Not from `Intl.DateTimeFormat().resolvedOptions()`, which answers the same at the
 * cost of loading ICU's formatting data; that is left for what neither tells (a POSIX rule,
 * no /etc/localtime, Windows). Cached per value of `TZ`, which Node lets a process change.
 */
export function localZone(): string | undefined {
  const tz = process.env.TZ
  if (zone == null || zone.tz !== tz) zone = { tz, name: hostZone(tz) ?? Intl.DateTimeFormat().resolvedOptions().timeZone }
  return zone.name
}

function hostZone(tz: string | undefined): string | undefined {
  if (tz != null && tz !== '') {
    const name = olson(tz.replace(/^:/, ''))
    // a name the system's zone files do not hold is left to ICU (which may map it, or fall back to UTC)
    return name != null && existsSync(`/usr/share/zoneinfo/${name}`) ? name : undefined
  }
  try {
    const target = readlinkSync('/etc/localtime')
    const at = target.lastIndexOf('zoneinfo/')
    return at < 0 ? undefined : olson(target.slice(at + 'zoneinfo/'.length))
  } catch {
    return undefined
  }
}

/** `name` without a `posix/` or `right/` prefix, if it is an Olson name */
function olson(name: string): string | undefined {
  const n = name.replace(/^(posix|right)\//, '')
  return OLSON.test(n) ? n : undefined
}
