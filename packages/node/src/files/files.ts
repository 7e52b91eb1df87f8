/**
 * Shared files (SPEC.md §16): `share` seals a local file into chunks, writes its manifest and
 * announces it through the normal message path; `get` fetches the manifest and the chunks
 * from any member that holds them (the sharer first, then connected and online members),
 * verifying each chunk's hash, storing each as it arrives, and resumes from what is stored.
 * A file stays held (pinned) by its sharer and by everyone who fetched it until they `unpin` it.
 */
import { randomBytes } from 'node:crypto'
import { access, rm, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { FileAccessError, FileTooLargeError, InvalidMessageError, UnknownFileError } from '../errors.js'
import { peerIdStringOfRaw, publicKeyOfPeer } from '../identity/keys.js'
import { groupKey, groupTopic, type PairKeys } from '../crypto/index.js'
import type { Messaging, SendResult } from '../messaging/index.js'
import { resolveTargets } from '../messaging/resolve.js'
import type { Presence } from '../presence/presence.js'
import { sanitizeLine } from '../text.js'
import type { MeshLibp2p } from '../transport/index.js'
import type { Blobs, FileRecord } from './blobs.js'
import * as c from './constants.js'
import { HolderStream } from './fetch.js'
import { hasBit } from './frames.js'
import {
  decodeManifest,
  encodeManifest,
  type Manifest,
  openMeta,
  sealMeta,
  sha256,
  unwrapGroup,
  unwrapPeer,
  wrapForGroup,
  wrapForPeer
} from './manifest.js'
import { Assembler, sealInto, tempDirName } from './seal-file.js'

const log = logger('claudemesh:files')

export interface FileView {
  id: string
  name: string
  size: number
  chunks: number
  have: number
  state: 'complete' | 'partial'
  role: 'shared' | 'fetched'
  from: string
  fromName: string
  at: number
}
export interface ShareResult {
  file: FileView
  sent: SendResult[]
}
export interface GetResult {
  file: FileView
  path: string
  fetchedBytes: number
  reusedChunks: number
  holders: string[]
}
export interface FileProgress {
  id: string
  name: string
  size: number
  chunks: number
  have: number
  fetchedBytes: number
}
export interface FilesInit {
  meshId: string
  selfPub: Uint8Array
  selfId: string
  contentSecret: Uint8Array
  pairKeys: PairKeys
  maxFileBytes: number
}
export interface FilesParts {
  libp2p: MeshLibp2p
  presence: Presence
  /** put where a peer can be dialled in the peer store (Dialer.learnWhere) */
  learnWhere: (peer: string) => Promise<void>
  blobs: Blobs
  messaging: Messaging
  groups: () => string[]
}

const ID = /^[0-9a-f]{64}$/
export const megabytes = (n: number): string => `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`

export class Files {
  private readonly progress = new Map<string, FileProgress>()
  private readonly running = new Map<string, Promise<GetResult>>()
  readonly stats = { refusedChunks: 0 }

  constructor(
    private readonly parts: FilesParts,
    private readonly init: FilesInit
  ) {}

  get protocol(): string {
    return c.fileProtocol(this.init.meshId)
  }
  get maxFileBytes(): number {
    return this.init.maxFileBytes
  }

  private tooLarge(what: string, size: number): FileTooLargeError {
    return new FileTooLargeError(
      `${what} is ${megabytes(size)}; the limit is ${megabytes(this.init.maxFileBytes)} (set CLAUDEMESH_MAX_FILE_MB to change it)`
    )
  }

  /** Seal `path`, keep it pinned, and announce it to `to` (peers or @groups, as `send` takes them). */
  async share(path: string, to: string | string[], opts: { message?: string } = {}): Promise<ShareResult> {
    const abs = resolve(path)
    const st = await stat(abs).catch(() => undefined)
    if (st == null || !st.isFile()) throw new InvalidMessageError(`no regular file at ${abs}`)
    if (st.size > this.init.maxFileBytes) throw this.tooLarge(basename(abs), st.size)
    const list = Array.isArray(to) ? to : [to]
    const targets = resolveTargets(list, this.parts.presence.list(), this.init.selfId)
    if (targets.length === 0) throw new InvalidMessageError('no recipient')
    const key = new Uint8Array(randomBytes(32))
    const tmp = join(this.parts.blobs.root, tempDirName())
    const sealed = await sealInto(abs, tmp, this.init.meshId, key, st.size).catch(async err => {
      await rm(tmp, { recursive: true, force: true })
      throw err
    })
    const name = basename(abs).slice(0, c.MAX_NAME_LENGTH)
    const { selfPub, meshId, contentSecret } = this.init
    const m: Manifest = {
      v: 1,
      from: selfPub,
      size: sealed.size,
      cs: c.CHUNK_BYTES,
      h: sealed.hashes,
      at: Date.now(),
      meta: sealMeta(meshId, key, { name, sha: sealed.sha }),
      keys: targets
        .flatMap(t => (t.kind === 'peer' ? [t.id] : []))
        .map(id => publicKeyOfPeer(id))
        .filter(p => p != null)
        .map(p => wrapForPeer(meshId, this.init.pairKeys.key(p), selfPub, p, key)),
      groups: targets
        .flatMap(t => (t.kind === 'group' ? [t.group] : []))
        .map(g => wrapForGroup(meshId, groupKey(contentSecret, meshId, g), selfPub, groupTopic(contentSecret, meshId, g), key))
    }
    const { bytes, id } = encodeManifest(m)
    await this.parts.blobs.adopt(tmp, id)
    await this.parts.blobs.put(
      { v: 1, id, name, size: m.size, chunks: m.h.length, role: 'shared', state: 'complete', from: this.init.selfId, at: m.at, key },
      bytes
    )
    const note = opts.message != null && opts.message.trim() !== '' ? `\n\n${opts.message.trim()}` : ''
    const body = `Shared a file: "${name}" (${megabytes(m.size)}), id ${id}. Fetch it with get_file (CLI: claudemesh file get ${id}).${note}`
    const sent = await this.parts.messaging.send(list, body.slice(0, 60_000))
    return { file: this.view(this.parts.blobs.get(id) as FileRecord), sent }
  }

  /** Fetch (or resume fetching) file `id` and write it to `dest` (default: its name in `cwd`). */
  async get(id: string, dest?: string, opts: { cwd?: string; pin?: boolean; from?: string } = {}): Promise<GetResult> {
    if (!ID.test(id)) throw new InvalidMessageError('a file id is 64 lowercase hex characters')
    const earlier = this.running.get(id)
    if (earlier != null) await earlier.catch(() => {})
    const run = this.fetchAndWrite(id, dest, opts)
    this.running.set(id, run)
    try {
      return await run
    } finally {
      if (this.running.get(id) === run) this.running.delete(id)
      this.progress.delete(id)
    }
  }

  private async fetchAndWrite(
    id: string,
    dest: string | undefined,
    opts: { cwd?: string; pin?: boolean; from?: string }
  ): Promise<GetResult> {
    const { blobs } = this.parts
    const prog: FileProgress = { id, name: '', size: 0, chunks: 0, have: 0, fetchedBytes: 0 }
    this.progress.set(id, prog)
    let m = await this.localManifest(id)
    const reused = m == null ? 0 : await this.verifyPresent(id, m)
    const at: { path?: string; asm?: Assembler } = {}
    // the file is opened into its destination while chunks arrive (seal-file.ts Assembler)
    const start = async (man: Manifest): Promise<Assembler> => {
      at.path ??= await this.destination(id, dest, opts.cwd)
      const key = (blobs.get(id) as FileRecord).key
      at.asm ??= await Assembler.open(at.path, {
        blobs,
        id,
        m: man,
        meshId: this.init.meshId,
        key,
        sha: openMeta(this.init.meshId, key, man).sha
      })
      return at.asm
    }
    try {
      const { holders, errors, manifest } = await this.fetchChunks(id, m, opts.from, prog, start)
      m = manifest
      if (m == null) throw new UnknownFileError(`no reachable member holds file ${id}${errors.length > 0 ? ` (${errors.join('; ')})` : ''}`)
      const missing = m.h.length - blobs.count(id)
      if (missing > 0)
        throw new UnknownFileError(
          `file ${id.slice(0, 12)}: ${missing} of ${m.h.length} chunks are held by no reachable member${errors.length > 0 ? ` (${errors.join('; ')})` : ''}; the chunks fetched are kept: get it again to resume`
        )
      const rec = blobs.get(id) as FileRecord
      if (rec.state !== 'complete') await blobs.put({ ...rec, state: 'complete' })
      await (await start(m)).finish()
      if (opts.pin === false && rec.role === 'fetched') await blobs.remove(id)
      const file = this.view(blobs.get(id) ?? { ...rec, state: 'complete' })
      return { file, path: at.path as string, fetchedBytes: prog.fetchedBytes, reusedChunks: reused, holders }
    } catch (err) {
      await at.asm?.abort()
      throw err
    }
  }

  /** Ask the candidates in turn for the manifest (if not held yet) and the chunks still missing; each stored chunk goes to the assembler. */
  private async fetchChunks(
    id: string,
    m: Manifest | undefined,
    hint: string | undefined,
    prog: FileProgress,
    start: (m: Manifest) => Promise<Assembler>
  ): Promise<{ holders: string[]; errors: string[]; manifest?: Manifest }> {
    const { blobs } = this.parts
    const holders: string[] = []
    const errors: string[] = []
    const idb = new Uint8Array(Buffer.from(id, 'hex'))
    for (const peer of this.candidates(hint, m)) {
      if (m != null && blobs.count(id) >= m.h.length) break
      let hs: HolderStream | undefined
      try {
        const pid = peerIdFromString(peer)
        // also when connected: identify wrote no address for a member that listens only through
        // its relay, and a dial by id beside a limited or closing relayed connection needs one
        await this.parts.learnWhere(peer)
        hs = await HolderStream.open(this.parts.libp2p, pid, this.protocol)
        const q = await hs.query(idb)
        if (q == null) {
          await hs.close()
          continue
        }
        m ??= await this.adopt(id, q.m)
        const asm = await start(m)
        Object.assign(prog, { name: blobs.get(id)?.name ?? '', size: m.size, chunks: m.h.length, have: blobs.count(id) })
        const want = [...m.h.keys()].filter(i => !blobs.has(id, i) && hasBit(q.have, i))
        if (want.length > 0) holders.push(peer)
        await hs.fetch(idb, m, want, async (i, b) => {
          await blobs.writeChunk(id, i, b)
          prog.have++
          prog.fetchedBytes += b.byteLength
          await asm.stored(i, b)
        })
        await hs.close()
      } catch (err) {
        hs?.abort(err as Error)
        if (err instanceof FileTooLargeError || err instanceof FileAccessError || (err as Error).name === 'InvalidMessageError') throw err
        if ((err as Error).message.includes('does not match its hash')) this.stats.refusedChunks++
        errors.push(`${peer.slice(-10)}: ${(err as Error).message}`)
        log('fetching %s from %s failed: %s', id, peer, (err as Error).message)
      }
    }
    return { holders, errors, manifest: m }
  }

  /** Where a get writes: `dest` (a directory gets the file's name), else the name in `cwd`; never over an existing file. */
  private async destination(id: string, dest: string | undefined, cwd = process.cwd()): Promise<string> {
    const name = safeName(this.parts.blobs.get(id)?.name ?? id)
    let path = resolve(cwd, dest ?? name)
    if ((await stat(path).catch(() => undefined))?.isDirectory() === true) path = join(path, name)
    if (
      await access(path).then(
        () => true,
        () => false
      )
    )
      throw new InvalidMessageError(`${path} already exists: give another destination`)
    return path
  }

  private async localManifest(id: string): Promise<Manifest | undefined> {
    const bytes = await this.parts.blobs.manifest(id)
    return bytes == null ? undefined : decodeManifest(bytes, id)
  }

  /** Chunks stored by an earlier run are kept only if they still hash right (a resume). */
  private async verifyPresent(id: string, m: Manifest): Promise<number> {
    let kept = 0
    for (let i = 0; i < m.h.length; i++) {
      if (!this.parts.blobs.has(id, i)) continue
      const ok = await this.parts.blobs.readChunk(id, i).then(
        b => Buffer.compare(sha256(b), m.h[i] as Uint8Array) === 0,
        () => false
      )
      if (ok) kept++
      else await this.parts.blobs.dropChunk(id, i)
    }
    return kept
  }

  /** A manifest fetched by id: within this node's cap and opening for this session, then pinned as partial. */
  private async adopt(id: string, bytes: Uint8Array): Promise<Manifest> {
    const m = decodeManifest(bytes, id)
    if (m.size > this.init.maxFileBytes) throw this.tooLarge(`file ${id.slice(0, 12)}`, m.size)
    const key = this.unwrap(m)
    if (key == null)
      throw new FileAccessError(`file ${id.slice(0, 12)} was not shared with this session: its key is sealed to other members`)
    const meta = openMeta(this.init.meshId, key, m)
    await this.parts.blobs.put(
      {
        v: 1,
        id,
        name: meta.name,
        size: m.size,
        chunks: m.h.length,
        role: 'fetched',
        state: 'partial',
        from: peerIdStringOfRaw(m.from),
        at: Date.now(),
        key
      },
      bytes
    )
    return m
  }

  private unwrap(m: Manifest): Uint8Array | undefined {
    const { meshId, contentSecret } = this.init
    try {
      const k = unwrapPeer(meshId, this.init.pairKeys.key(m.from), m, this.init.selfPub)
      if (k != null) return k
    } catch {
      /* the sharer's key is not a curve point: only a group wrap can open it */
    }
    for (const g of new Set(['*', ...this.parts.groups()])) {
      const k = unwrapGroup(meshId, groupKey(contentSecret, meshId, g), m, groupTopic(contentSecret, meshId, g))
      if (k != null) return k
    }
    return undefined
  }

  /** Who to ask: a hint, the sharer, then members this node is connected to, then other online members. */
  private candidates(hint: string | undefined, m: Manifest | undefined): string[] {
    const connected = new Set(this.parts.libp2p.getConnections().map(cn => cn.remotePeer.toString()))
    const online = this.parts.presence
      .list()
      .filter(p => p.online && p.id !== this.init.selfId)
      .map(p => p.id)
    const first = [hint, m == null ? undefined : peerIdStringOfRaw(m.from)].filter((p): p is string => p != null && p !== this.init.selfId)
    const rest = [...online.filter(p => connected.has(p)), ...online.filter(p => !connected.has(p))]
    return [...new Set([...first, ...rest])].slice(0, c.MAX_CANDIDATES)
  }

  list(): FileView[] {
    return this.parts.blobs.list().map(r => this.view(r))
  }

  status(id: string): FileProgress | undefined {
    return this.progress.get(id)
  }

  /** Stop holding a file: its chunks are deleted now; once no member pins it, it is gone (SPEC.md §16.4). */
  async unpin(id: string): Promise<boolean> {
    if (this.running.has(id)) throw new InvalidMessageError(`file ${id.slice(0, 12)} is being fetched`)
    return this.parts.blobs.remove(id)
  }

  private view(r: FileRecord): FileView {
    return {
      id: r.id,
      name: r.name,
      size: r.size,
      chunks: r.chunks,
      have: this.parts.blobs.count(r.id),
      state: r.state,
      role: r.role,
      from: r.from,
      fromName: r.from === this.init.selfId ? this.parts.presence.self().name : (this.parts.presence.get(r.from)?.name ?? ''),
      at: r.at
    }
  }
}

/** A peer-chosen name made safe as one path segment in the receiver's directory. */
export function safeName(name: string): string {
  const s = sanitizeLine(name, c.MAX_NAME_LENGTH)
    .replace(/[/\\\0]/g, '_')
    .trim()
  return s === '' || s === '.' || s === '..' ? 'file' : s
}
