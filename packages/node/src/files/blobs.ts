/**
 * A session's file store (SPEC.md §16.3): records and manifests in the `files` sublevel of the
 * session's LevelDB, sealed chunks as files under `files/<mesh>/<session>/<id>/<index>`.
 * Chunks are big and write-once, so they stay out of LevelDB (no compaction rewrites, and
 * unpinning frees the space at once). Which chunks are present is read from the directory.
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { ensureDir, validateMeshName, validateSessionId } from '../home.js'
import type { GroupCommit } from '../store/commit.js'
import type { Sublevel } from '../store/index.js'
import { MAX_MANIFEST_BYTES } from './constants.js'

export const FileRecordSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(/^[0-9a-f]{64}$/),
    name: z.string().max(255),
    size: z.number().int().nonnegative(),
    chunks: z.number().int().nonnegative(),
    role: z.enum(['shared', 'fetched']),
    state: z.enum(['complete', 'partial']),
    from: z.string().max(128),
    at: z.number().int().nonnegative(),
    key: zBytes({ len: 32 })
  })
  .strict()
export type FileRecord = z.infer<typeof FileRecordSchema>

export const blobRoot = (home: string, mesh: string, session: string): string =>
  join(home, 'files', validateMeshName(mesh), validateSessionId(session))
const chunkName = (i: number): string => String(i).padStart(6, '0')

export class Blobs {
  /** chunk indices present on disk, per file id */
  private readonly present = new Map<string, Set<number>>()
  private readonly records = new Map<string, FileRecord>()
  readonly stats = { skipped: 0, collected: 0 }

  constructor(
    private readonly db: Sublevel,
    private readonly commit: GroupCommit,
    readonly root: string
  ) {}

  /** Load the records, then collect every blob directory no record pins (SPEC.md §16.4). */
  async start(): Promise<void> {
    await ensureDir(this.root)
    for await (const [k, v] of this.db.iterator({ gte: 'f!', lt: 'f"' })) {
      try {
        const r = decodeFrame(v, FileRecordSchema, 4096, 'file record')
        if (r.id === k.slice(2)) this.records.set(r.id, r)
      } catch {
        this.stats.skipped++
      }
    }
    for (const entry of await readdir(this.root)) {
      if (this.records.has(entry)) this.present.set(entry, await this.scan(entry))
      else {
        await rm(join(this.root, entry), { recursive: true, force: true })
        this.stats.collected++
      }
    }
  }

  private async scan(id: string): Promise<Set<number>> {
    const names = await readdir(join(this.root, id)).catch(() => [] as string[])
    return new Set(names.filter(n => /^\d{6}$/.test(n)).map(Number))
  }

  get(id: string): FileRecord | undefined {
    return this.records.get(id)
  }
  list(): FileRecord[] {
    return [...this.records.values()].sort((a, b) => b.at - a.at)
  }
  has(id: string, i: number): boolean {
    return this.present.get(id)?.has(i) ?? false
  }
  count(id: string): number {
    return this.present.get(id)?.size ?? 0
  }

  /** A bitmap of the chunks held: bit i of byte i >> 3 (least significant first). */
  bitmap(id: string, chunks: number): Uint8Array {
    const bits = new Uint8Array(Math.ceil(chunks / 8))
    for (const i of this.present.get(id) ?? []) if (i < chunks) bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (i & 7))
    return bits
  }

  async manifest(id: string): Promise<Uint8Array | undefined> {
    return this.db.get(`m!${id}`)
  }

  /** Record a file (and its manifest) with one synced write: from here on it is pinned. */
  async put(r: FileRecord, manifest?: Uint8Array): Promise<void> {
    if (manifest != null && manifest.byteLength > MAX_MANIFEST_BYTES) throw new Error('manifest too large')
    const ops = [{ type: 'put' as const, sublevel: this.db, key: `f!${r.id}`, value: encodeFrame(r) }]
    if (manifest != null) ops.push({ type: 'put' as const, sublevel: this.db, key: `m!${r.id}`, value: manifest })
    await this.commit.write(ops as never)
    this.records.set(r.id, r)
    if (!this.present.has(r.id)) this.present.set(r.id, new Set())
  }

  async readChunk(id: string, i: number): Promise<Uint8Array> {
    return new Uint8Array(await readFile(join(this.root, id, chunkName(i))))
  }

  /** Write a chunk whole or not at all (temp file, rename); `sync` for what the node acknowledges. */
  async writeChunk(id: string, i: number, bytes: Uint8Array, sync = false): Promise<void> {
    const dir = join(this.root, id)
    await ensureDir(dir)
    const file = join(dir, chunkName(i))
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
    const fh = await open(tmp, 'wx', 0o600)
    try {
      await fh.writeFile(bytes)
      if (sync) await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
    let set = this.present.get(id)
    if (set == null) this.present.set(id, (set = new Set()))
    set.add(i)
  }

  async dropChunk(id: string, i: number): Promise<void> {
    this.present.get(id)?.delete(i)
    await rm(join(this.root, id, chunkName(i)), { force: true })
  }

  /** Move a directory of chunks written under a temporary name to its id (a share). */
  async adopt(tmpDir: string, id: string): Promise<void> {
    await rename(tmpDir, join(this.root, id))
    this.present.set(id, await this.scan(id))
  }

  /** Unpin: forget the record and the manifest (synced), then delete the chunks. */
  async remove(id: string): Promise<boolean> {
    if (!this.records.has(id)) return false
    await this.commit.write([
      { type: 'del', sublevel: this.db, key: `f!${id}` },
      { type: 'del', sublevel: this.db, key: `m!${id}` }
    ] as never)
    this.records.delete(id)
    this.present.delete(id)
    await rm(join(this.root, id), { recursive: true, force: true })
    return true
  }
}
