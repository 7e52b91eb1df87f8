/**
 * The bound on a value this session sets (SPEC.md §11.5), checked before anything recurses
 * over it: `JSON.stringify` of a value nested 10,000 deep throws "Maximum call stack size
 * exceeded", so depth is measured first, without recursion, and the walk stops at the limit.
 * Light (no yjs): the CLI checks a value with it before sending it to its node.
 */
import { InvalidMessageError } from '../errors.js'
import { MAX_SET_DEPTH, MAX_VALUE_BYTES } from './constants.js'

/** True when `value` has more than `max` levels of arrays or objects. */
export function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }]
  for (let top = stack.pop(); top != null; top = stack.pop()) {
    if (top.v == null || typeof top.v !== 'object') continue
    if (top.d + 1 > max) return true
    for (const x of Object.values(top.v)) stack.push({ v: x, d: top.d + 1 })
  }
  return false
}

/** The value's JSON text, or a clear InvalidMessageError when it is not JSON, too deep or too large. */
export function checkSetValue(value: unknown): string {
  if (deeperThan(value, MAX_SET_DEPTH)) throw new InvalidMessageError(`the value is nested deeper than ${MAX_SET_DEPTH} levels (the limit)`)
  const json = value === undefined ? undefined : JSON.stringify(value)
  if (json === undefined) throw new InvalidMessageError('a state value must be JSON (not undefined)')
  const size = Buffer.byteLength(json)
  if (size > MAX_VALUE_BYTES) throw new InvalidMessageError(`the value is ${size} bytes; the limit is ${MAX_VALUE_BYTES} bytes`)
  return json
}
