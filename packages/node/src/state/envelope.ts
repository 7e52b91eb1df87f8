/**
 * Signed CRDT updates (SPEC.md §11.1). Yjs has no authentication, so every update travels in
 * an envelope signed by its author's session key, and is checked before it touches a document:
 * its structs may only be plain JSON values (ContentAny) set on the `state` or `memory` root
 * maps, written under the Yjs client id bound to the author (hash of key and incarnation),
 * each value naming the same author in `by`, within size and depth limits.
 */
import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { InvalidSignatureError, MalformedFrameError } from '../errors.js'
import { type Ed25519PrivateKey, peerIdStringOfRaw, sign, verifyRaw } from '../identity/keys.js'
import { deriveKey } from '../identity/secrets.js'
import { open, seal } from '../crypto/index.js'
import * as c from './constants.js'

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const Shape = { v: z.literal(1), author: zBytes({ len: 32 }), inc: uint, seq: uint, update: zBytes({ max: c.MAX_UPDATE_BYTES }) }
const SignedSchema = z.object({ ...Shape, sig: zBytes({ len: 64 }) }).strict()
export type UpdateEnvelope = z.infer<typeof SignedSchema>

const enc = new TextEncoder()

/**
 * The Yjs client id an author uses in one incarnation: 48 bits of a hash, never 0. Wide
 * enough that no member can search out an incarnation whose id collides with another's
 * (which would make Yjs re-key the victim and peers refuse its updates).
 */
export function clientIdOf(author: Uint8Array, inc: number): number {
  const h = createHash('sha256').update(author).update(String(inc)).digest()
  return h.readUIntBE(0, 6) || 1
}

function signedBytes(meshId: string, e: Omit<UpdateEnvelope, 'sig'>): Uint8Array {
  const body = encodeFrame([e.v, e.author, e.inc, e.seq, e.update])
  const ctx = enc.encode(c.UPDATE_SIGN_CONTEXT + meshId)
  const out = new Uint8Array(ctx.byteLength + body.byteLength)
  out.set(ctx)
  out.set(body, ctx.byteLength)
  return out
}

/** The key that seals updates: only members hold it, so a relay neither reads nor forges state. */
export function updateKey(contentSecret: Uint8Array, meshId: string): Uint8Array {
  return deriveKey(contentSecret, meshId, 'crdt/v1')
}

const aad = (author: Uint8Array, inc: number, seq: number): Uint8Array => encodeFrame([author, inc, seq])

/** Seal the Yjs update with the mesh's update key, then sign the envelope. */
export async function signUpdate(
  meshId: string,
  key: Ed25519PrivateKey,
  sealKey: Uint8Array,
  inc: number,
  seq: number,
  update: Uint8Array
): Promise<Uint8Array> {
  const author = key.publicKey.raw
  const e = { v: 1 as const, author, inc, seq, update: seal(sealKey, update, aad(author, inc, seq)) }
  return encodeFrame({ ...e, sig: await sign(key, signedBytes(meshId, e)) })
}

/** Open a verified envelope's update (no signature check: see `verifyUpdate`). */
export function openUpdate(sealKey: Uint8Array, e: UpdateEnvelope): Uint8Array {
  return open(sealKey, e.update, aad(e.author, e.inc, e.seq))
}

export function decodeUpdateEnvelope(bytes: Uint8Array): UpdateEnvelope {
  return decodeFrame(bytes, SignedSchema, c.MAX_ENVELOPE_BYTES, 'crdt envelope')
}

/**
 * Verify the signature and open the seal: after this the update is a member's, by `author`.
 * Throws `InvalidSignatureError` or the seal's error.
 */
export async function openVerified(
  meshId: string,
  sealKey: Uint8Array,
  e: UpdateEnvelope
): Promise<{ author: string; update: Uint8Array }> {
  if (!(await verifyRaw(e.author, signedBytes(meshId, e), e.sig))) throw new InvalidSignatureError('crdt update signature does not verify')
  return { author: peerIdStringOfRaw(e.author), update: openUpdate(sealKey, e) }
}

/** Verify signature, seal and contents; returns the author's peer id, the Yjs update and its items. */
export async function verifyUpdate(
  meshId: string,
  sealKey: Uint8Array,
  e: UpdateEnvelope
): Promise<{ author: string; update: Uint8Array; structs: Y.Item[] }> {
  const { author, update } = await openVerified(meshId, sealKey, e)
  return { author, update, structs: checkStructs(update, clientIdOf(e.author, e.inc), author) }
}

/** The update's items, each one JSON value by its author on a root map (throws `MalformedFrameError`). */
export function checkStructs(update: Uint8Array, client: number, author: string): Y.Item[] {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    decoded = Y.decodeUpdate(update)
  } catch (err) {
    throw new MalformedFrameError(`crdt update does not decode: ${(err as Error).message}`)
  }
  const items: Y.Item[] = []
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item)) throw new MalformedFrameError('crdt update carries a struct that is not an item')
    if (s.id.client !== client) throw new MalformedFrameError("crdt update writes under a client id that is not its author's")
    // an item that overwrites a map entry is placed by its origin (an item we already hold,
    // so inside state or memory) and carries no parent; a first write names its root and key
    const placedByOrigin = s.parent == null && s.parentSub == null && (s.origin != null || s.rightOrigin != null)
    if (!placedByOrigin) {
      if (typeof s.parent !== 'string' || !(c.ROOTS as readonly string[]).includes(s.parent))
        throw new MalformedFrameError('crdt update touches something other than the state, memory and tasks maps')
      if (typeof s.parentSub !== 'string' || s.parentSub.length > c.MAX_KEY_LENGTH)
        throw new MalformedFrameError('crdt update is not a map entry, or its key is too long')
    }
    if (!(s.content instanceof Y.ContentAny) || s.content.arr.length !== 1)
      throw new MalformedFrameError('crdt update carries content that is not one JSON value')
    checkValue(s.content.arr[0], author)
    items.push(s)
  }
  return items
}

/** A stored value: a JSON object naming its writer in `by`, bounded in size and depth. */
export function checkValue(v: unknown, author: string): void {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new MalformedFrameError('crdt value is not an object')
  if ((v as { by?: unknown }).by !== author) throw new MalformedFrameError('crdt value names another author than its signer')
  if (depth(v) > c.MAX_VALUE_DEPTH) throw new MalformedFrameError(`crdt value is nested deeper than ${c.MAX_VALUE_DEPTH}`)
  if (Buffer.byteLength(JSON.stringify(v)) > c.MAX_VALUE_BYTES + 1024) throw new MalformedFrameError('crdt value is too large')
}

export function depth(v: unknown, d = 0): number {
  if (d > c.MAX_VALUE_DEPTH + 1) return d
  if (v == null || typeof v !== 'object') return d
  let max = d + 1
  for (const x of Object.values(v)) max = Math.max(max, depth(x, d + 1))
  return max
}
