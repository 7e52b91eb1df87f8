/**
 * Frames on a DM stream (SPEC.md §8.3): length-prefixed CBOR maps.
 *   {t: 'm', e: <envelope>}        a message, sender → recipient
 *   {t: 'a', ids: [<16 bytes>…]}   acks: the messages are on the recipient's disk
 *   {t: 'r', ids: [<16 bytes>…]}   read receipts: the recipient's model has seen them
 *   {t: 'x', ids, why, ms}         refused for now (flood control): not stored, retry after `ms`
 */
import { z } from 'zod'
import { decodeFrame, encodeFrame, isBytes, isRecordOf, zBytes } from '../codec.js'
import { MAX_ACK_IDS, MAX_DM_FRAME_BYTES, MAX_ENVELOPE_BYTES, MAX_RETRY_AFTER_MS } from './constants.js'

export const DmFrameSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('m'), e: zBytes({ max: MAX_ENVELOPE_BYTES }) }).strict(),
  z.object({ t: z.literal('a'), ids: z.array(zBytes({ len: 16 })).max(MAX_ACK_IDS) }).strict(),
  z.object({ t: z.literal('r'), ids: z.array(zBytes({ len: 16 })).max(MAX_ACK_IDS) }).strict(),
  z
    .object({
      t: z.literal('x'),
      ids: z
        .array(zBytes({ len: 16 }))
        .min(1)
        .max(MAX_ACK_IDS),
      why: z.enum(['rate', 'inbox-full', 'blocked']),
      ms: z.number().int().min(0).max(MAX_RETRY_AFTER_MS)
    })
    .strict()
])
export type DmFrame = z.infer<typeof DmFrameSchema>

export const encodeDmFrame = (f: DmFrame): Uint8Array => encodeFrame(f)
/** DmFrameSchema's fast check (codec.ts Guard) for the frames of every DM: a message, acks, receipts */
export function isPlainDmFrame(v: unknown): boolean {
  if (!isRecordOf(v, 2)) return false
  if (v.t === 'm') return isBytes(v.e, { max: MAX_ENVELOPE_BYTES })
  if (v.t !== 'a' && v.t !== 'r') return false
  const ids = v.ids
  if (!Array.isArray(ids) || ids.length > MAX_ACK_IDS) return false
  for (const id of ids) if (!isBytes(id, { len: 16 })) return false
  return true
}

export const decodeDmFrame = (b: Uint8Array): DmFrame => decodeFrame(b, DmFrameSchema, MAX_DM_FRAME_BYTES, 'dm frame', isPlainDmFrame)
