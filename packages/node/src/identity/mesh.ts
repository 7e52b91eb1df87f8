/**
 * A mesh on this machine: `$CLAUDEMESH_HOME/meshes/<name>.json` (0600). The owner's copy
 * also holds the owner key that signs invites; a member's copy holds the secrets its invite
 * carried. See SPEC.md §3.
 */
import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { z } from 'zod'
import { InvalidKeyFileError, MeshExistsError, MeshNotFoundError } from '../errors.js'
import { paths, readFileOrUndefined, validateMeshName, writeFileAtomic } from '../home.js'
import { decodePrivateKey, type Ed25519PrivateKey, encodePrivateKey, newEd25519Key } from './keys.js'

const b64 = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/)

export const MeshFileSchema = z.object({
  v: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{16}$/),
  name: z.string(),
  owner: b64,
  ownerKey: z.string().optional(),
  networkSecret: b64,
  contentSecret: b64.optional(),
  bootstrap: z.array(z.string()),
  relays: z.array(z.string()),
  createdAt: z.number()
})
export type MeshFile = z.infer<typeof MeshFileSchema>

/** A loaded mesh with its secrets as bytes. `contentSecret` is absent on a relay's copy. */
export interface Mesh {
  id: string
  name: string
  owner: Uint8Array
  ownerKey?: Ed25519PrivateKey
  networkSecret: Uint8Array
  contentSecret?: Uint8Array
  bootstrap: string[]
  relays: string[]
  createdAt: number
}

const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url')
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'))

export function meshToFile(m: Mesh): MeshFile {
  return {
    v: 1,
    id: m.id,
    name: m.name,
    owner: toB64(m.owner),
    ownerKey: m.ownerKey != null ? encodePrivateKey(m.ownerKey) : undefined,
    networkSecret: toB64(m.networkSecret),
    contentSecret: m.contentSecret != null ? toB64(m.contentSecret) : undefined,
    bootstrap: m.bootstrap,
    relays: m.relays,
    createdAt: m.createdAt
  }
}

export function meshFromFile(f: MeshFile, where: string): Mesh {
  const mesh: Mesh = {
    id: f.id,
    name: f.name,
    owner: fromB64(f.owner),
    networkSecret: fromB64(f.networkSecret),
    bootstrap: f.bootstrap,
    relays: f.relays,
    createdAt: f.createdAt
  }
  if (f.ownerKey != null) mesh.ownerKey = decodePrivateKey(f.ownerKey, where)
  if (f.contentSecret != null) mesh.contentSecret = fromB64(f.contentSecret)
  if (mesh.networkSecret.byteLength !== 32) throw new InvalidKeyFileError(`${where}: network secret must be 32 bytes`)
  return mesh
}

export async function createMesh(home: string, name: string, opts: { bootstrap?: string[]; relays?: string[] } = {}): Promise<Mesh> {
  validateMeshName(name)
  if ((await readFileOrUndefined(paths.mesh(home, name))) != null) {
    throw new MeshExistsError(`mesh "${name}" already exists in ${home}`)
  }
  const ownerKey = await newEd25519Key()
  const mesh: Mesh = {
    id: randomBytes(8).toString('hex'),
    name,
    owner: ownerKey.publicKey.raw,
    ownerKey,
    networkSecret: new Uint8Array(randomBytes(32)),
    contentSecret: new Uint8Array(randomBytes(32)),
    bootstrap: opts.bootstrap ?? [],
    relays: opts.relays ?? [],
    createdAt: Date.now()
  }
  await saveMesh(home, mesh)
  return mesh
}

export async function saveMesh(home: string, mesh: Mesh): Promise<void> {
  await writeFileAtomic(paths.mesh(home, mesh.name), `${JSON.stringify(meshToFile(mesh), null, 2)}\n`)
}

export async function loadMesh(home: string, name: string): Promise<Mesh> {
  const file = paths.mesh(home, name)
  const text = await readFileOrUndefined(file)
  if (text == null) {
    const known = (await listMeshes(home)).map(m => m.name)
    throw new MeshNotFoundError(
      `no mesh "${name}" in ${home}${known.length > 0 ? ` (known: ${known.join(', ')})` : ' (create one with `claudemesh mesh create <name>` or join with `claudemesh mesh join <token>`)'}`
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new InvalidKeyFileError(`${file} is not valid JSON`)
  }
  const parsed = MeshFileSchema.safeParse(json)
  if (!parsed.success) throw new InvalidKeyFileError(`${file} is not a claudemesh mesh file: ${parsed.error.issues[0]?.message}`)
  return meshFromFile(parsed.data, file)
}

export async function listMeshes(home: string): Promise<Mesh[]> {
  let names: string[]
  try {
    names = await readdir(paths.meshes(home))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: Mesh[] = []
  for (const n of names.filter(n => n.endsWith('.json')).sort()) {
    try {
      out.push(await loadMesh(home, n.slice(0, -'.json'.length)))
    } catch {
      // a malformed file is reported by `doctor`, not fatal to listing the others
    }
  }
  return out
}

/** The mesh to use when none is named: the only one, else a clear error. */
export async function defaultMesh(home: string, name?: string): Promise<Mesh> {
  if (name != null) return loadMesh(home, name)
  const all = await listMeshes(home)
  if (all.length === 1 && all[0] != null) return all[0]
  if (all.length === 0)
    throw new MeshNotFoundError(
      `no mesh in ${home}: create one with \`claudemesh mesh create <name>\` or join with \`claudemesh mesh join <token>\``
    )
  throw new MeshNotFoundError(`several meshes in ${home}, pick one with --mesh: ${all.map(m => m.name).join(', ')}`)
}
