/**
 * Turning a local file into sealed chunks (SPEC.md §16.1), and sealed chunks back into a file.
 * Both stream one chunk at a time, so memory stays at a chunk whatever the file's size.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { MalformedFrameError } from '../errors.js'
import { ensureDir } from '../home.js'
import type { Blobs } from './blobs.js'
import { CHUNK_BYTES } from './constants.js'
import { type Manifest, openChunk, sealChunk, sha256 } from './manifest.js'

export interface SealedFile { hashes: Uint8Array[], size: number, sha: Uint8Array }

/** Seal `path` into `dir` (one synced file per chunk), returning each sealed chunk's hash. */
export async function sealInto (path: string, dir: string, meshId: string, key: Uint8Array, size: number): Promise<SealedFile> {
  await ensureDir(dir)
  const fh = await open(path, 'r')
  const whole = createHash('sha256')
  const hashes: Uint8Array[] = []
  let at = 0
  try {
    const buf = Buffer.alloc(CHUNK_BYTES)
    for (let i = 0; at < size; i++) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK_BYTES, size - at), at)
      if (bytesRead === 0) break
      const plain = buf.subarray(0, bytesRead)
      whole.update(plain)
      const sealed = sealChunk(meshId, key, i, plain)
      hashes.push(sha256(sealed))
      await writeSynced(join(dir, String(i).padStart(6, '0')), sealed)
      at += bytesRead
    }
  } finally {
    await fh.close()
  }
  return { hashes, size: at, sha: new Uint8Array(whole.digest()) }
}

async function writeSynced (file: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(file, 'wx', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Open every chunk in order into `dest`, atomically (a temp file renamed over it once the
 * whole file's SHA-256 matches the sharer's). Nothing is left at `dest` on failure.
 */
export async function assemble (blobs: Blobs, id: string, m: Manifest, meshId: string, key: Uint8Array, sha: Uint8Array, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true })
  const tmp = `${dest}.${randomBytes(4).toString('hex')}.part`
  const fh = await open(tmp, 'wx', 0o644)
  const whole = createHash('sha256')
  try {
    for (let i = 0; i < m.h.length; i++) {
      const plain = openChunk(meshId, key, i, await blobs.readChunk(id, i))
      whole.update(plain)
      await fh.write(plain)
    }
    if (Buffer.compare(whole.digest(), sha) !== 0) throw new MalformedFrameError(`file ${id.slice(0, 12)} does not match the sharer's SHA-256 after opening`)
    await fh.sync()
    await fh.close()
    await rename(tmp, dest)
  } catch (err) {
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
}

export const tempDirName = (): string => `.tmp-${randomBytes(6).toString('hex')}`
