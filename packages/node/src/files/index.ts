/**
 * Shared files (SPEC.md §16): content-addressed, chunked, sealed to their recipients, fetched
 * from any member that holds them, resumable, pinned until unpinned.
 *
 * @example
 * ```ts
 * const { file } = await node.files.share('./report.pdf', 'bob')
 * // on bob's node:
 * await node.files.get(file.id, '/tmp/report.pdf')
 * ```
 */
import type { Ed25519PrivateKey } from '../identity/keys.js'
import { PairKeys } from '../crypto/index.js'
import type { Messaging } from '../messaging/index.js'
import type { Presence } from '../presence/presence.js'
import type { GroupCommit } from '../store/commit.js'
import { type Store, sublevel } from '../store/index.js'
import type { MeshLibp2p } from '../transport/index.js'
import { Blobs, blobRoot } from './blobs.js'
import * as c from './constants.js'
import { Files } from './files.js'
import { FileServer } from './serve.js'

export { Files, type FileProgress, type FileView, type GetResult, megabytes, safeName, type ShareResult } from './files.js'
export { CHUNK_BYTES, DEFAULT_MAX_FILE_BYTES, fileProtocol, HARD_MAX_FILE_BYTES } from './constants.js'

export interface FileServiceInit {
  home: string
  mesh: { name: string; id: string }
  session: string
  privateKey: Ed25519PrivateKey
  contentSecret: Uint8Array
  /** the largest file this node shares or fetches (default DEFAULT_MAX_FILE_BYTES) */
  maxFileBytes?: number
}

export interface FileServiceParts {
  libp2p: MeshLibp2p
  presence: Presence
  learnWhere: (peer: string) => Promise<void>
  store: Store
  commit: GroupCommit
  messaging: Messaging
  groups: () => string[]
}

/** The largest file: the node's option, else CLAUDEMESH_MAX_FILE_MB, else 100 MB; never above the hard cap. */
export function fileCap(opt?: number, env: NodeJS.ProcessEnv = process.env): number {
  const mb = Number(env.CLAUDEMESH_MAX_FILE_MB)
  const cap = opt ?? (Number.isFinite(mb) && mb > 0 ? Math.floor(mb * 1e6) : c.DEFAULT_MAX_FILE_BYTES)
  return Math.min(cap, c.HARD_MAX_FILE_BYTES)
}

export class FileService {
  readonly blobs: Blobs
  readonly server: FileServer
  readonly files: Files

  constructor(
    private readonly parts: FileServiceParts,
    private readonly init: FileServiceInit
  ) {
    this.blobs = new Blobs(sublevel(parts.store, 'files'), parts.commit, blobRoot(init.home, init.mesh.name, init.session))
    this.server = new FileServer(this.blobs)
    const pub = init.privateKey.publicKey.raw
    this.files = new Files(
      {
        libp2p: parts.libp2p,
        presence: parts.presence,
        learnWhere: parts.learnWhere,
        blobs: this.blobs,
        messaging: parts.messaging,
        groups: parts.groups
      },
      {
        meshId: init.mesh.id,
        selfPub: pub,
        selfId: parts.presence.selfId,
        contentSecret: init.contentSecret,
        pairKeys: new PairKeys(pub, init.privateKey.raw.subarray(0, 32), init.contentSecret, init.mesh.id),
        maxFileBytes: fileCap(init.maxFileBytes)
      }
    )
  }

  async start(): Promise<void> {
    await this.blobs.start()
    await this.parts.libp2p.handle(
      c.fileProtocol(this.init.mesh.id),
      (stream, conn) => {
        void this.server.serve(stream, conn)
      },
      { runOnLimitedConnection: true, maxInboundStreams: c.MAX_INBOUND_STREAMS }
    )
  }

  async stop(): Promise<void> {
    await this.parts.libp2p.unhandle(c.fileProtocol(this.init.mesh.id)).catch(() => {})
  }
}
