/**
 * One ed25519 session key per (mesh, Claude session UUID), at
 * `$CLAUDEMESH_HOME/sessions/<mesh>/<uuid>.json` (dir 0700, file 0600). Relaunching or
 * resuming the session reuses it, so its PeerId, and every DM sealed to it, survive restarts.
 * Two processes racing to create the same key both end up with the one that won the link().
 */
import { randomBytes } from 'node:crypto'
import { link, open, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { z } from 'zod'
import { InvalidKeyFileError } from '../errors.js'
import { ensureDir, paths, readFileOrUndefined, validateSessionId } from '../home.js'
import { decodePrivateKey, type Ed25519PrivateKey, encodePrivateKey, newEd25519Key } from './keys.js'

const SessionKeyFileSchema = z.object({
  v: z.literal(1),
  mesh: z.string(),
  session: z.string(),
  peerId: z.string(),
  privateKey: z.string(),
  createdAt: z.number()
})

export interface SessionKey {
  mesh: string
  session: string
  privateKey: Ed25519PrivateKey
  peerId: PeerId
  createdAt: number
  /** true when this call created the key */
  created: boolean
}

export async function loadOrCreateSessionKey(home: string, mesh: string, session: string): Promise<SessionKey> {
  const sessionId = validateSessionId(session)
  const file = paths.sessionKey(home, mesh, sessionId)
  const existing = await readSessionKey(file)
  if (existing != null) return existing
  const privateKey = await newEd25519Key()
  const record = {
    v: 1 as const,
    mesh,
    session: sessionId,
    peerId: peerIdFromPrivateKey(privateKey).toString(),
    privateKey: encodePrivateKey(privateKey),
    createdAt: Date.now()
  }
  await ensureDir(dirname(file))
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(`${JSON.stringify(record, null, 2)}\n`)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await link(tmp, file) // fails with EEXIST if another process won the race
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await rm(tmp, { force: true })
  }
  const key = await readSessionKey(file)
  if (key == null) throw new InvalidKeyFileError(`${file} vanished while it was being created`)
  return { ...key, created: key.peerId.toString() === record.peerId }
}

async function readSessionKey(file: string): Promise<SessionKey | undefined> {
  const text = await readFileOrUndefined(file)
  if (text == null) return undefined
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new InvalidKeyFileError(`${file} is not valid JSON; move it away to mint a new key (queued DMs to the old one will be lost)`)
  }
  const parsed = SessionKeyFileSchema.safeParse(json)
  if (!parsed.success) throw new InvalidKeyFileError(`${file} is not a claudemesh session key: ${parsed.error.issues[0]?.message}`)
  const privateKey = decodePrivateKey(parsed.data.privateKey, file)
  const peerId = peerIdFromPrivateKey(privateKey)
  if (peerId.toString() !== parsed.data.peerId) throw new InvalidKeyFileError(`${file}: the stored peer id does not match its key`)
  return { mesh: parsed.data.mesh, session: parsed.data.session, privateKey, peerId, createdAt: parsed.data.createdAt, created: false }
}
