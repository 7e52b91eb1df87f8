/**
 * Message envelopes (SPEC.md §8.1, §9.1). A DM envelope is sealed with the pair key; a group
 * envelope with the group key and signed by its sender. Both carry a header that binds
 * sender, recipient (or group topic), id and time, authenticated by the AEAD (and by the
 * signature for groups), so a captured envelope cannot be re-addressed or re-dated.
 */
import { z } from 'zod'
import { decodeFrame, encodeFrame, isBytes, isRecordOf, zBytes } from '../codec.js'
import { InvalidSignatureError } from '../errors.js'
import { type Ed25519PrivateKey, sign, verifyRaw } from '../identity/keys.js'
import { GROUP_SIGN_CONTEXT, MAX_BODY_BYTES, MAX_ENVELOPE_BYTES, PRIORITIES } from './constants.js'
import { concat } from 'uint8arrays/concat'
import { open, randomSlice, seal } from '../crypto/index.js'

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const enc = new TextEncoder()

export const ContentSchema = z
  .object({
    body: z.string().refine(s => Buffer.byteLength(s) <= MAX_BODY_BYTES, `body exceeds ${MAX_BODY_BYTES} bytes`),
    pri: z.enum(PRIORITIES),
    re: z.string().max(64).optional(),
    group: z.string().max(64).optional()
  })
  .strict()
export type Content = z.infer<typeof ContentSchema>

const isShortText = (v: unknown): boolean => v === undefined || (typeof v === 'string' && v.length <= 64)

/** ContentSchema's fast check (codec.ts Guard) */
export function isPlainContent(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false
  const c = v as Record<string, unknown>
  let n = 2
  if (Object.hasOwn(c, 're')) n++
  if (Object.hasOwn(c, 'group')) n++
  return (
    isRecordOf(c, n) &&
    typeof c.body === 'string' &&
    Buffer.byteLength(c.body) <= MAX_BODY_BYTES &&
    PRIORITIES.includes(c.pri as (typeof PRIORITIES)[number]) &&
    isShortText(c.re) &&
    isShortText(c.group)
  )
}

/** Content as sealed: checked against its schema (fast when it is plain). */
function checked(content: Content): Content {
  return isPlainContent(content) ? content : ContentSchema.parse(content)
}

const DmShape = {
  v: z.literal(1),
  from: zBytes({ len: 32 }),
  to: zBytes({ len: 32 }),
  id: zBytes({ len: 16 }),
  ts: uint,
  exp: uint,
  ct: zBytes({ max: MAX_ENVELOPE_BYTES })
}
export const DmEnvelopeSchema = z.object(DmShape).strict()
export type DmEnvelope = z.infer<typeof DmEnvelopeSchema>

const isUint = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0

/** DmEnvelopeSchema's fast check (codec.ts Guard) */
export function isPlainDmEnvelope(v: unknown): boolean {
  return (
    isRecordOf(v, 7) &&
    v.v === 1 &&
    isBytes(v.from, { len: 32 }) &&
    isBytes(v.to, { len: 32 }) &&
    isBytes(v.id, { len: 16 }) &&
    isUint(v.ts) &&
    isUint(v.exp) &&
    isBytes(v.ct, { max: MAX_ENVELOPE_BYTES })
  )
}

const GroupShape = {
  v: z.literal(1),
  from: zBytes({ len: 32 }),
  topic: z.string().max(128),
  id: zBytes({ len: 16 }),
  ts: uint,
  ct: zBytes({ max: MAX_ENVELOPE_BYTES })
}
export const GroupEnvelopeSchema = z.object({ ...GroupShape, sig: zBytes({ len: 64 }) }).strict()
export type GroupEnvelope = z.infer<typeof GroupEnvelopeSchema>

export const newMessageId = (): Uint8Array => randomSlice(16)
/** hex of the id's own bytes, without copying them first */
export const idText = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
export const idBytes = (id: string): Uint8Array => new Uint8Array(Buffer.from(id, 'hex'))

/** `claudemesh/dm/v1\0<mesh id>` as bytes, for the last mesh asked (a node has one) */
let aadPrefix: { meshId: string; bytes: Uint8Array } | undefined

function dmAad(meshId: string, e: Omit<DmEnvelope, 'ct'>): Uint8Array {
  if (aadPrefix?.meshId !== meshId) aadPrefix = { meshId, bytes: enc.encode(`claudemesh/dm/v1\0${meshId}`) }
  return concat([aadPrefix.bytes, encodeFrame([e.v, e.from, e.to, e.id, e.ts, e.exp])])
}

export function sealDm(meshId: string, key: Uint8Array, h: Omit<DmEnvelope, 'ct' | 'v'>, content: Content): Uint8Array {
  const header = { v: 1 as const, ...h }
  const ct = seal(key, encodeFrame(checked(content)), dmAad(meshId, header))
  // a buffer of its own: the outbox keeps it until the ack (encodeFrame's `own`)
  return encodeFrame({ ...header, ct }, true)
}

export function decodeDm(bytes: Uint8Array): DmEnvelope {
  return decodeFrame(bytes, DmEnvelopeSchema, MAX_ENVELOPE_BYTES, 'dm envelope', isPlainDmEnvelope)
}

export function openDm(meshId: string, key: Uint8Array, e: DmEnvelope): Content {
  return decodeFrame(open(key, e.ct, dmAad(meshId, e)), ContentSchema, MAX_ENVELOPE_BYTES, 'dm content', isPlainContent)
}

function groupSigned(meshId: string, e: Omit<GroupEnvelope, 'sig'>): Uint8Array {
  return concat([enc.encode(GROUP_SIGN_CONTEXT + meshId), encodeFrame([e.v, e.from, e.topic, e.id, e.ts, e.ct])])
}

export async function sealGroup(
  meshId: string,
  key: Uint8Array,
  signer: Ed25519PrivateKey,
  h: Omit<GroupEnvelope, 'ct' | 'v' | 'sig'>,
  content: Content
): Promise<Uint8Array> {
  const header = { v: 1 as const, ...h }
  const ct = seal(key, encodeFrame(checked(content)), encodeFrame([header.from, header.topic, header.id, header.ts]))
  const unsigned = { ...header, ct }
  const sig = await sign(signer, groupSigned(meshId, unsigned))
  return encodeFrame({ ...unsigned, sig })
}

/** Decode and verify a group envelope's signature (opening needs the group key). */
export async function decodeGroup(meshId: string, bytes: Uint8Array): Promise<GroupEnvelope> {
  const e = decodeFrame(bytes, GroupEnvelopeSchema, MAX_ENVELOPE_BYTES, 'group envelope')
  if (!(await verifyRaw(e.from, groupSigned(meshId, e), e.sig))) throw new InvalidSignatureError('group envelope signature does not verify')
  return e
}

/** The header of a group envelope, unverified: only to look its author up before verifying. */
export function decodeGroupHeader(bytes: Uint8Array): GroupEnvelope {
  return decodeFrame(bytes, GroupEnvelopeSchema, MAX_ENVELOPE_BYTES, 'group envelope')
}

export function openGroup(key: Uint8Array, e: GroupEnvelope): Content {
  return decodeFrame(
    open(key, e.ct, encodeFrame([e.from, e.topic, e.id, e.ts])),
    ContentSchema,
    MAX_ENVELOPE_BYTES,
    'group content',
    isPlainContent
  )
}
