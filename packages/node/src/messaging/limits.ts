/**
 * Flood limits set by the local user (SPEC.md §8.8): `name=value` settings (the CLI's
 * `--limit`), checked against the bounds below, and the same check for a `limits` object
 * handed to a node. A bad setting is refused with one line naming it; nothing is applied.
 */
import { InvalidLimitError } from '../errors.js'
import { type Budget, DEFAULT_LIMITS, type FloodLimits } from './flood.js'

const DAY_MS = 86_400_000
/** the upper bound of every setting: 2⁴⁰, room for "no limit" (benchmarks) */
const MAX = 2 ** 40
/** A setting's bounds: a whole number from `min` to `max`, or (a rate) any number above 0 up to `max`. */
interface Bounds {
  int: boolean
  min: number
  max: number
}
const int = (min: number, max: number): Bounds => ({ int: true, min, max })
const rate: Bounds = { int: false, min: 0, max: MAX }

function inBounds(b: Bounds, v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && (b.int ? Number.isInteger(v) && v >= b.min : v > b.min) && v <= b.max
}

/** Every setting, its bounds and its unit (shown in errors and help). */
const SETTINGS = {
  'dm.rate': { range: rate, unit: 'messages/s' },
  'dm.burst': { range: int(1, MAX), unit: 'messages' },
  'dm.byteRate': { range: rate, unit: 'bytes/s' },
  'dm.byteBurst': { range: int(1, MAX), unit: 'bytes' },
  'group.rate': { range: rate, unit: 'messages/s' },
  'group.burst': { range: int(1, MAX), unit: 'messages' },
  'group.byteRate': { range: rate, unit: 'bytes/s' },
  'group.byteBurst': { range: int(1, MAX), unit: 'bytes' },
  senderUnread: { range: int(1, MAX), unit: 'messages' },
  senderUnreadBytes: { range: int(1, MAX), unit: 'bytes' },
  totalUnread: { range: int(1, MAX), unit: 'messages' },
  totalUnreadBytes: { range: int(1, MAX), unit: 'bytes' },
  floorUnread: { range: int(0, MAX), unit: 'messages' },
  graceMs: { range: int(0, DAY_MS), unit: 'ms' },
  blockAfter: { range: int(1, MAX), unit: 'messages' },
  blockMs: { range: int(1_000, 30 * DAY_MS), unit: 'ms' }
} as const satisfies Record<string, { range: Bounds; unit: string }>

export type LimitName = keyof typeof SETTINGS
export const LIMIT_NAMES = Object.keys(SETTINGS) as LimitName[]

/** `k`, `m`, `g` (KiB, MiB, GiB) for byte settings; `s`, `min`, `h` for ms settings. */
const SUFFIX: Record<string, Record<string, number>> = {
  bytes: { k: 1024, m: 1024 ** 2, g: 1024 ** 3 },
  'bytes/s': { k: 1024, m: 1024 ** 2, g: 1024 ** 3 },
  ms: { s: 1000, min: 60_000, h: 3_600_000 }
}

function parseValue(name: LimitName, text: string): number {
  const { range, unit } = SETTINGS[name]
  const m = /^(\d+(?:\.\d+)?)([a-z]*)$/i.exec(text.trim())
  const mult = m == null ? undefined : m[2] === '' ? 1 : SUFFIX[unit]?.[(m[2] as string).toLowerCase()]
  if (m == null || mult == null)
    throw new InvalidLimitError(
      `limit ${name}: "${text}" is not a number of ${unit}${SUFFIX[unit] != null ? ` (suffixes: ${Object.keys(SUFFIX[unit]).join(', ')})` : ''}`
    )
  const value = Number(m[1]) * mult
  const v = range.int ? Math.round(value) : value
  if (!inBounds(range, v)) throw new InvalidLimitError(`limit ${name}: ${text} is out of range (${describe(range)} ${unit})`)
  return v
}

function describe(b: Bounds): string {
  return `${b.int ? 'a whole number' : 'a number'} ${b.int ? `from ${b.min}` : `above ${b.min}`} up to ${b.max}`
}

/** `["dm.rate=100", "senderUnread=5000"]` → a partial FloodLimits; the last setting of a name wins. */
export function parseLimits(specs: readonly string[]): Partial<FloodLimits> {
  const flat = new Map<LimitName, number>()
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    const name = (eq < 0 ? spec : spec.slice(0, eq)).trim()
    if (!(LIMIT_NAMES as string[]).includes(name))
      throw new InvalidLimitError(`unknown limit "${name.slice(0, 40)}": use one of ${LIMIT_NAMES.join(', ')}`)
    if (eq < 0) throw new InvalidLimitError(`limit ${name}: give a value, as ${name}=<number>`)
    flat.set(name as LimitName, parseValue(name as LimitName, spec.slice(eq + 1)))
  }
  return nest(flat)
}

function nest(flat: Map<LimitName, number>): Partial<FloodLimits> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of flat) {
    const [a, b] = name.split('.') as [string, string | undefined]
    if (b == null) out[a] = value
    else out[a] = { ...((out[a] as object) ?? DEFAULT_LIMITS[a as 'dm' | 'group']), [b]: value }
  }
  return out as Partial<FloodLimits>
}

/** The limits a node runs with: defaults, overridden by `limits`, each checked as `parseLimits` does. */
export function checkLimits(limits: Partial<FloodLimits> = {}): FloodLimits {
  const out: FloodLimits = { ...DEFAULT_LIMITS, ...limits }
  for (const name of LIMIT_NAMES) {
    const [a, b] = name.split('.') as [keyof FloodLimits, keyof Budget | undefined]
    const v = b == null ? out[a] : (out[a] as Budget | undefined)?.[b]
    if (!inBounds(SETTINGS[name].range, v))
      throw new InvalidLimitError(
        `limit ${name}: ${String(v).slice(0, 40)} is out of range (${describe(SETTINGS[name].range)} ${SETTINGS[name].unit})`
      )
  }
  return out
}
