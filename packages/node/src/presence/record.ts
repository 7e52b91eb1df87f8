/**
 * Signed presence records (SPEC.md §6.1). The header (peer key, incarnation, sequence, time,
 * addresses) is readable by anyone holding the network secret, so a relay can keep a
 * registry and enforce single presence; the body (name, role, groups, status, summary, cwd,
 * host) is sealed with the mesh's presence key, which relays never get. The signature
 * covers the whole record, ciphertext included, bound to the mesh id.
 */
import { randomBytes } from 'node:crypto'
import { TAG_BYTES, XNONCE_BYTES, xOpenWith, xSealWith } from '../crypto/aead.js'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { InvalidSignatureError, MalformedFrameError } from '../errors.js'
import { type Ed25519PrivateKey, sign, verifyRaw } from '../identity/keys.js'
import { GROUP_NAME, LIMITS, MAX_RECORD_BYTES, PRESENCE_SIGN_CONTEXT, STATUSES } from './constants.js'

export const GroupSchema = z
  .object({
    name: z.string().min(1).max(LIMITS.groupName).regex(GROUP_NAME, 'group names use letters, digits, ".", "_" or "-"'),
    role: z.string().max(LIMITS.role).optional()
  })
  .strict()
export type Group = z.infer<typeof GroupSchema>

export const PresenceBodySchema = z
  .object({
    name: z.string().max(LIMITS.name),
    role: z.string().max(LIMITS.role),
    groups: z.array(GroupSchema).max(LIMITS.groups),
    status: z.enum(STATUSES),
    summary: z.string().max(LIMITS.summary),
    cwd: z.string().max(LIMITS.cwd),
    host: z.string().max(LIMITS.host)
  })
  .strict()
export type PresenceBody = z.infer<typeof PresenceBodySchema>

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)

const HeaderShape = {
  v: z.literal(1),
  peer: zBytes({ len: 32 }),
  inc: uint,
  seq: uint,
  at: uint,
  addrs: z.array(z.string().max(LIMITS.addr)).max(LIMITS.addrs),
  gone: z.boolean(),
  body: zBytes({ max: MAX_RECORD_BYTES })
}
const UnsignedSchema = z.object(HeaderShape).strict()
const SignedSchema = z.object({ ...HeaderShape, sig: zBytes({ len: 64 }) }).strict()

export type UnsignedRecord = z.infer<typeof UnsignedSchema>
export type SignedRecord = z.infer<typeof SignedSchema>

const enc = new TextEncoder()

function signedBytes(meshId: string, r: UnsignedRecord): Uint8Array {
  const ctx = enc.encode(PRESENCE_SIGN_CONTEXT + meshId)
  const body = encodeFrame(unsigned(r))
  const out = new Uint8Array(ctx.byteLength + body.byteLength)
  out.set(ctx)
  out.set(body, ctx.byteLength)
  return out
}

function unsigned(r: UnsignedRecord): UnsignedRecord {
  return { v: r.v, peer: r.peer, inc: r.inc, seq: r.seq, at: r.at, addrs: r.addrs, gone: r.gone, body: r.body }
}

export function sealBody(key: Uint8Array, peer: Uint8Array, body: PresenceBody): Uint8Array {
  return xSealWith(key, randomBytes(XNONCE_BYTES), encodeFrame(PresenceBodySchema.parse(body)), peer)
}

export function openBody(key: Uint8Array, peer: Uint8Array, sealed: Uint8Array): PresenceBody {
  if (sealed.byteLength < XNONCE_BYTES + TAG_BYTES) throw new MalformedFrameError('presence body is too short')
  let plain: Uint8Array
  try {
    plain = xOpenWith(key, sealed, peer)
  } catch {
    throw new MalformedFrameError("presence body does not open with this mesh's key")
  }
  return decodeFrame(plain, PresenceBodySchema, MAX_RECORD_BYTES, 'presence body')
}

export async function signRecord(meshId: string, key: Ed25519PrivateKey, r: UnsignedRecord): Promise<Uint8Array> {
  const sig = await sign(key, signedBytes(meshId, r))
  return encodeFrame({ ...unsigned(r), sig })
}

/** Decode a record from the wire (size and schema only; see `checkSignature`). */
export function decodeRecord(bytes: Uint8Array): SignedRecord {
  return decodeFrame(bytes, SignedSchema, MAX_RECORD_BYTES, 'presence')
}

export async function checkSignature(meshId: string, r: SignedRecord): Promise<void> {
  if (!(await verifyRaw(r.peer, signedBytes(meshId, r), r.sig))) {
    throw new InvalidSignatureError('presence record signature does not verify')
  }
}

/** Decode a record from the wire and verify its signature; throws on anything wrong. */
export async function verifyRecord(meshId: string, bytes: Uint8Array): Promise<SignedRecord> {
  const r = decodeRecord(bytes)
  await checkSignature(meshId, r)
  return r
}
