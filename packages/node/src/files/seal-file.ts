/**
 * Turning a local file into sealed chunks (SPEC.md §16.1), and sealed chunks back into a file.
 * Both stream one chunk at a time, so memory stays at a chunk whatever the file's size.
 */
import { createHash, randomBytes } from 'node:crypto'
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { MalformedFrameError } from '../errors.js'
import { ensureDir } from '../home.js'
import type { Blobs } from './blobs.js'
import { CHUNK_BYTES } from './constants.js'
import { type Manifest, openChunk, sealChunk, sha256 } from './manifest.js'

export interface SealedFile {
  hashes: Uint8Array[]
  size: number
  sha: Uint8Array
}

/** Seal `path` into `dir` (one synced file per chunk), returning each sealed chunk's hash. */
export async function sealInto(path: string, dir: string, meshId: string, key: Uint8Array, size: number): Promise<SealedFile> {
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

async function writeSynced(file: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(file, 'wx', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Opens chunks in order into a temp file beside `dest` while they are fetched (a chunk that
 * continues the file is written as it is stored, so the file is not read back a second time),
 * and renames it over `dest` once the whole file's SHA-256 matches the sharer's. Nothing is left
 * at `dest` on failure (`abort`).
 */
export class Assembler {
  private next = 0
  private readonly whole = createHash('sha256')

  private constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    private readonly dest: string,
    private readonly f: AssembledFile
  ) {}

  static async open(dest: string, f: AssembledFile): Promise<Assembler> {
    await mkdir(dirname(dest), { recursive: true })
    const tmp = `${dest}.${randomBytes(4).toString('hex')}.part`
    return new Assembler(await open(tmp, 'wx', 0o644), tmp, dest, f)
  }

  /** Chunk `i` was stored (`sealed` its bytes): write it, and the stored chunks after it, if it continues the file. */
  async stored(i: number, sealed: Uint8Array): Promise<void> {
    if (i !== this.next) return
    await this.put(sealed)
    await this.catchUp()
  }

  /** Write what is left (every chunk must be stored by now), check the whole file, sync, rename. */
  async finish(): Promise<void> {
    await this.catchUp()
    const { blobs, id, m, sha } = this.f
    while (this.next < m.h.length) await this.put(await blobs.readChunk(id, this.next))
    if (Buffer.compare(this.whole.digest(), sha) !== 0)
      throw new MalformedFrameError(`file ${id.slice(0, 12)} does not match the sharer's SHA-256 after opening`)
    await this.fh.sync()
    await this.fh.close()
    await rename(this.tmp, this.dest)
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {})
    await rm(this.tmp, { force: true })
  }

  private async catchUp(): Promise<void> {
    const { blobs, id, m } = this.f
    while (this.next < m.h.length && blobs.has(id, this.next)) await this.put(await blobs.readChunk(id, this.next))
  }

  private async put(sealed: Uint8Array): Promise<void> {
    const plain = openChunk(this.f.meshId, this.f.key, this.next, sealed)
    this.whole.update(plain)
    await this.fh.write(plain)
    this.next++
  }
}

/** What an Assembler opens: file `id` of manifest `m` in `blobs`, its key and its plaintext SHA-256. */
export interface AssembledFile {
  blobs: Blobs
  id: string
  m: Manifest
  meshId: string
  key: Uint8Array
  sha: Uint8Array
}

export const tempDirName = (): string => `.tmp-${randomBytes(6).toString('hex')}`
