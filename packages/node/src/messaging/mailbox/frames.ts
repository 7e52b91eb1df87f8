/**
 * The mailbox protocol (SPEC.md §12.3): one long-lived stream per member and relay, carrying
 * deposits one way and held mail the other. Length-prefixed CBOR maps:
 *
 *   member → relay                          relay → member
 *   {t: 'm', e}    deposit a sealed DM       {t: 'm', e}        held mail for you
 *   {t: 'a', ids}  mail on my disk: delete   {t: 'h', ids}      your deposits are on disk
 *   {t: 'n', ids}  mail refused: delete      {t: 'x', ids, why} your deposits are refused
 *   {t: 'k', ids}  receipts recorded         {t: 'd', ids}      your deposits were delivered
 *
 * Envelopes are the DM envelopes of §8.1, byte for byte: the relay reads their header
 * (sender, recipient, id, times) and can open nothing.
 */
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../../codec.js'
import { MAX_ACK_IDS, MAX_DM_FRAME_BYTES, MAX_ENVELOPE_BYTES } from '../constants.js'

export const mailboxProtocol = (meshId: string): string => `/claudemesh/${meshId}/mailbox/1.0.0`

/** Why a relay refuses a deposit. `quota` and `full` are worth retrying later. */
export const REFUSALS = ['quota', 'full', 'expired', 'invalid'] as const
export type Refusal = (typeof REFUSALS)[number]

const ids = z
  .array(zBytes({ len: 16 }))
  .min(1)
  .max(MAX_ACK_IDS)

export const MailboxFrameSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('m'), e: zBytes({ max: MAX_ENVELOPE_BYTES }) }).strict(),
  z.object({ t: z.literal('a'), ids }).strict(),
  z.object({ t: z.literal('n'), ids }).strict(),
  z.object({ t: z.literal('k'), ids }).strict(),
  z.object({ t: z.literal('h'), ids }).strict(),
  z.object({ t: z.literal('d'), ids }).strict(),
  z.object({ t: z.literal('x'), ids, why: z.enum(REFUSALS) }).strict()
])
export type MailboxFrame = z.infer<typeof MailboxFrameSchema>

export const MAX_MAILBOX_FRAME_BYTES = MAX_DM_FRAME_BYTES

export const encodeMailboxFrame = (f: MailboxFrame): Uint8Array => encodeFrame(f)
export const decodeMailboxFrame = (b: Uint8Array): MailboxFrame =>
  decodeFrame(b, MailboxFrameSchema, MAX_MAILBOX_FRAME_BYTES, 'mailbox frame')

/** How many deposits or deliveries one side keeps unacknowledged on a mailbox stream. */
export const MAILBOX_WINDOW = 2048
