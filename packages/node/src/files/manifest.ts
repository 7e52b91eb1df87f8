/**
 * File manifests and sealing (SPEC.md §16.1). A file is sealed chunk by chunk under a random
 * file key with the §8.2 AEAD; the manifest lists each sealed chunk's SHA-256 and wraps the
 * file key for each recipient: under the DM pair key of (sharer, recipient) or under a group
 * key. The file id is the SHA-256 of the manifest, so the id names the exact sealed bytes and
 * any holder can serve them without being able to open them; only a recipient unwraps the key.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { MalformedFrameError } from '../errors.js'
import { concat } from 'uint8arrays/concat'
import { open, seal } from '../crypto/index.js'
import * as c from './constants.js'

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const enc = new TextEncoder()

export const ManifestSchema = z
  .object({
    v: z.literal(1),
    from: zBytes({ len: 32 }),
    size: uint,
    cs: z.number().int().min(c.MIN_CHUNK_BYTES).max(c.MAX_CHUNK_BYTES),
    h: z.array(zBytes({ len: 32 })).max(c.MAX_CHUNKS),
    meta: zBytes({ max: c.MAX_META_BYTES }),
    keys: z.array(z.object({ to: zBytes({ len: 32 }), k: zBytes({ max: 128 }) }).strict()).max(c.MAX_PEER_WRAPS),
    groups: z.array(z.object({ g: z.string().max(128), k: zBytes({ max: 128 }) }).strict()).max(c.MAX_GROUP_WRAPS),
    at: uint
  })
  .strict()
  .refine(m => m.h.length === Math.ceil(m.size / m.cs), 'chunk count does not match size')
export type Manifest = z.infer<typeof ManifestSchema>

const MetaSchema = z.object({ name: z.string().min(1).max(c.MAX_NAME_LENGTH), sha: zBytes({ len: 32 }) }).strict()
export type FileMeta = z.infer<typeof MetaSchema>

export const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function aad(meshId: string, parts: unknown[]): Uint8Array {
  return concat([enc.encode(c.FILE_CONTEXT + meshId), encodeFrame(parts)])
}

export function sealChunk(meshId: string, key: Uint8Array, index: number, plain: Uint8Array): Uint8Array {
  return seal(key, plain, aad(meshId, ['c', index]))
}

export function openChunk(meshId: string, key: Uint8Array, index: number, sealed: Uint8Array): Uint8Array {
  return open(key, sealed, aad(meshId, ['c', index]))
}

export function sealMeta(meshId: string, key: Uint8Array, meta: FileMeta): Uint8Array {
  return seal(key, encodeFrame(meta), aad(meshId, ['m']))
}

export function openMeta(meshId: string, key: Uint8Array, m: Manifest): FileMeta {
  return decodeFrame(open(key, m.meta, aad(meshId, ['m'])), MetaSchema, c.MAX_META_BYTES, 'file meta')
}

export function wrapForPeer(
  meshId: string,
  pairKey: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  fileKey: Uint8Array
): { to: Uint8Array; k: Uint8Array } {
  return { to, k: seal(pairKey, fileKey, aad(meshId, ['k', from, to])) }
}

export function wrapForGroup(
  meshId: string,
  groupKey: Uint8Array,
  from: Uint8Array,
  topic: string,
  fileKey: Uint8Array
): { g: string; k: Uint8Array } {
  return { g: topic, k: seal(groupKey, fileKey, aad(meshId, ['g', from, topic])) }
}

export function unwrapPeer(meshId: string, pairKey: Uint8Array, m: Manifest, self: Uint8Array): Uint8Array | undefined {
  const w = m.keys.find(k => Buffer.compare(k.to, self) === 0)
  return w == null ? undefined : tryOpen(pairKey, w.k, aad(meshId, ['k', m.from, self]))
}

export function unwrapGroup(meshId: string, groupKey: Uint8Array, m: Manifest, topic: string): Uint8Array | undefined {
  const w = m.groups.find(g => g.g === topic)
  return w == null ? undefined : tryOpen(groupKey, w.k, aad(meshId, ['g', m.from, topic]))
}

function tryOpen(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | undefined {
  try {
    const k = open(key, sealed, ad)
    return k.byteLength === 32 ? k : undefined
  } catch {
    return undefined
  }
}

export function encodeManifest(m: Manifest): { bytes: Uint8Array; id: string } {
  const bytes = encodeFrame(m)
  return { bytes, id: hex(sha256(bytes)) }
}

/** A manifest as received: its hash must be the id asked for, then the strict schema. */
export function decodeManifest(bytes: Uint8Array, id: string): Manifest {
  if (bytes.byteLength > c.MAX_MANIFEST_BYTES)
    throw new MalformedFrameError(`file manifest of ${bytes.byteLength} bytes exceeds the ${c.MAX_MANIFEST_BYTES}-byte limit`)
  if (hex(sha256(bytes)) !== id) throw new MalformedFrameError(`the manifest sent for file ${id.slice(0, 12)} does not hash to its id`)
  return decodeFrame(bytes, ManifestSchema, c.MAX_MANIFEST_BYTES, 'file manifest')
}

/** Size of chunk `i` before sealing. */
export function plainChunkSize(m: Pick<Manifest, 'size' | 'cs'>, i: number): number {
  return Math.min(m.cs, m.size - i * m.cs)
}
