/**
 * Invite tokens (SPEC.md §3.3): `cm1.` + base64url(CBOR {p: payload, s: signature}), where
 * the payload carries the mesh id and name, the owner key, the secrets a member (or, without
 * the content secret, a relay) needs, bootstrap and relay addresses and an expiry, and the
 * signature is the owner's ed25519 signature over `INVITE_CONTEXT || p`.
 */
import { concat } from 'uint8arrays/concat'
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { ExpiredInviteError, InvalidInviteError } from '../errors.js'
import { readFileOrUndefined, paths, validateMeshName } from '../home.js'
import { sign, verifyRaw } from './keys.js'
import { loadMesh, type Mesh, saveMesh } from './mesh.js'

export const INVITE_PREFIX = 'cm1.'
export const MAX_INVITE_BYTES = 8192
/** Longest lifetime an invite may be given (SPEC.md §3.3): a leaked token stops working within a year. */
export const MAX_INVITE_TTL_MS = 365 * 24 * 3600_000
const INVITE_CONTEXT = new TextEncoder().encode('claudemesh/invite/v1\0')

const bytes = (len?: number) => zBytes(len != null ? { len } : {})

const OuterSchema = z.object({ p: bytes(), s: bytes(64) }).strict()
const PayloadSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(/^[0-9a-f]{16}$/),
    name: z.string().max(64),
    owner: bytes(32),
    net: bytes(32),
    content: bytes(32).optional(),
    bootstrap: z.array(z.string().max(512)).max(32),
    relays: z.array(z.string().max(512)).max(8),
    iat: z.number().int(),
    exp: z.number().int()
  })
  .strict()
export type InvitePayload = z.infer<typeof PayloadSchema>

export interface InviteOptions {
  /** lifetime in ms (default 7 days) */
  ttl?: number
  /** a relay invite: network secret only, no content secret */
  relay?: boolean
  bootstrap?: string[]
  now?: number
}

export async function createInvite(mesh: Mesh, opts: InviteOptions = {}): Promise<string> {
  if (mesh.ownerKey == null)
    throw new InvalidInviteError(`only the owner of mesh "${mesh.name}" can invite; this machine joined it by invite`)
  if (!opts.relay && mesh.contentSecret == null) throw new InvalidInviteError(`mesh "${mesh.name}" has no content secret here`)
  const ttl = opts.ttl ?? 7 * 24 * 3600_000
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > MAX_INVITE_TTL_MS)
    throw new InvalidInviteError(`an invite lasts from 1 ms to 365 days; ${ttl} ms is out of range`)
  const now = opts.now ?? Date.now()
  const payload: InvitePayload = {
    v: 1,
    id: mesh.id,
    name: mesh.name,
    owner: mesh.owner,
    net: mesh.networkSecret,
    bootstrap: [...new Set([...mesh.bootstrap, ...(opts.bootstrap ?? [])])],
    relays: mesh.relays,
    iat: Math.floor(now / 1000),
    exp: Math.floor((now + ttl) / 1000)
  }
  if (!opts.relay && mesh.contentSecret != null) payload.content = mesh.contentSecret
  const p = encodeFrame(payload)
  const s = await sign(mesh.ownerKey, concat([INVITE_CONTEXT, p]))
  return INVITE_PREFIX + Buffer.from(encodeFrame({ p, s })).toString('base64url')
}

/** Decode and verify a token: well-formed, signed by the owner it names, not expired. */
export async function verifyInvite(token: string, now = Date.now()): Promise<InvitePayload> {
  const t = token.trim()
  if (!t.startsWith(INVITE_PREFIX)) throw new InvalidInviteError('not a claudemesh invite (it should start with "cm1.")')
  const body = t.slice(INVITE_PREFIX.length)
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new InvalidInviteError('invite is damaged: it contains characters outside base64url')
  let payload: InvitePayload
  let outer: z.infer<typeof OuterSchema>
  try {
    const raw = Buffer.from(body, 'base64url')
    if (raw.toString('base64url') !== body) throw new Error('it is not canonical base64url (truncated or extended?)')
    outer = decodeFrame(new Uint8Array(raw), OuterSchema, MAX_INVITE_BYTES, 'invite')
    payload = decodeFrame(outer.p, PayloadSchema, MAX_INVITE_BYTES, 'invite payload')
    validateMeshName(payload.name)
  } catch (err) {
    throw new InvalidInviteError(`invite is damaged or not for this version: ${(err as Error).message}`)
  }
  if (!(await verifyRaw(payload.owner, concat([INVITE_CONTEXT, outer.p]), outer.s))) {
    throw new InvalidInviteError('invite signature does not verify: it was altered or not signed by the mesh owner')
  }
  if (payload.exp * 1000 <= now) {
    throw new ExpiredInviteError(
      `invite for mesh "${payload.name}" expired at ${new Date(payload.exp * 1000).toISOString()}; ask the owner for a new one`
    )
  }
  return payload
}

/**
 * Join: verify, then write the mesh file. Re-joining the same mesh refreshes its addresses;
 * an invite that reuses a local mesh's name or id under another owner is refused.
 */
export async function joinMesh(home: string, token: string, now = Date.now()): Promise<Mesh> {
  const p = await verifyInvite(token, now)
  // a relay invite carries no content secret: joining with it would leave a member who can read nothing
  if (p.content == null)
    throw new InvalidInviteError(
      `this is a relay invite for mesh "${p.name}": run \`claudemesh relay --invite <token>\` on the relay host; members join with an invite made without --relay`
    )
  let existing: Mesh | undefined
  if ((await readFileOrUndefined(paths.mesh(home, p.name))) != null) existing = await loadMesh(home, p.name)
  if (existing != null && (existing.id !== p.id || !equals(existing.owner, p.owner))) {
    throw new InvalidInviteError(
      `a different mesh named "${p.name}" already exists here (id ${existing.id}); this invite is for id ${p.id} owned by another key`
    )
  }
  const mesh: Mesh = {
    ...(existing ?? { createdAt: now }),
    id: p.id,
    name: p.name,
    owner: p.owner,
    networkSecret: p.net,
    bootstrap: [...new Set([...(existing?.bootstrap ?? []), ...p.bootstrap])],
    relays: [...new Set([...(existing?.relays ?? []), ...p.relays])]
  }
  if (p.content != null) mesh.contentSecret = p.content
  else if (existing?.contentSecret == null) delete mesh.contentSecret
  await saveMesh(home, mesh)
  return mesh
}
