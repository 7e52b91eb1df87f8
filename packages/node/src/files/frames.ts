/** Frames of the file protocol (SPEC.md §16.2): strict CBOR, discriminated by `t`. */
import { z } from 'zod'
import { decodeFrame, zBytes } from '../codec.js'
import * as c from './constants.js'

const uint = z.number().int().nonnegative().max(c.MAX_CHUNKS)

/** fetcher → holder */
export const RequestSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('q'), id: zBytes({ len: 32 }) }).strict(),
  z.object({ t: z.literal('g'), id: zBytes({ len: 32 }), i: z.array(uint).min(1).max(c.MAX_REQUEST_CHUNKS) }).strict()
])
export type Request = z.infer<typeof RequestSchema>

/** holder → fetcher */
export const ReplySchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('i'), m: zBytes({ max: c.MAX_MANIFEST_BYTES }), have: zBytes({ max: c.MAX_CHUNKS / 8 }) }).strict(),
  z.object({ t: z.literal('n') }).strict(),
  z.object({ t: z.literal('c'), i: uint, b: zBytes({ max: c.MAX_CHUNK_BYTES + c.SEAL_OVERHEAD }) }).strict(),
  z.object({ t: z.literal('x'), i: uint }).strict()
])
export type Reply = z.infer<typeof ReplySchema>

export const decodeRequest = (b: Uint8Array): Request => decodeFrame(b, RequestSchema, c.MAX_REQUEST_BYTES, 'file request')
export const decodeReply = (b: Uint8Array): Reply => decodeFrame(b, ReplySchema, c.MAX_FILE_FRAME_BYTES, 'file reply')

export function hasBit(bits: Uint8Array, i: number): boolean {
  return ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
}
