/**
 * The one wire encoding between peers: deterministic CBOR (cborg) checked against a zod
 * schema. Every decoder takes an explicit byte limit and refuses before parsing, so an
 * oversized or malformed frame costs nothing but its own bytes. See SPEC.md §2.
 */
import { decode, encode } from 'cborg'
import { z } from 'zod'
import { FrameTooLargeError, MalformedFrameError } from './errors.js'

export function encodeFrame(value: unknown): Uint8Array {
  return encode(value)
}

export function decodeFrame<S extends z.ZodType>(bytes: Uint8Array, schema: S, maxBytes: number, what: string): z.output<S> {
  if (bytes.byteLength > maxBytes) {
    throw new FrameTooLargeError(`${what} frame of ${bytes.byteLength} bytes exceeds the ${maxBytes}-byte limit`)
  }
  let raw: unknown
  try {
    // strict: no undefined, no duplicate map keys, canonical lengths; tags are refused
    raw = decode(bytes, { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false, allowIndefinite: false, allowBigInt: false })
  } catch (err) {
    throw new MalformedFrameError(`${what} frame is not valid CBOR: ${(err as Error).message}`)
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new MalformedFrameError(`${what} frame does not match its schema: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  }
  return parsed.data
}

/** A CBOR byte string, optionally of an exact length or at most `max` bytes. */
export function zBytes(opts: { len?: number; max?: number } = {}): z.ZodType<Uint8Array> {
  return z.custom<Uint8Array>(
    v => v instanceof Uint8Array && (opts.len == null || v.byteLength === opts.len) && (opts.max == null || v.byteLength <= opts.max),
    opts.len != null ? `expected ${opts.len} bytes` : `expected at most ${opts.max ?? 'n'} bytes`
  )
}
