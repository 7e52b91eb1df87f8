/**
 * The same-home DM socket (SPEC.md §8.9). Nodes that share a home reach each other's DM
 * choke-point over a unix socket under `run/<mesh>/`, with the §8.3 frames after one hello
 * frame, instead of a libp2p connection: no PSK, Noise, identify or muxer to pay for, so a
 * burst to many peers of one machine costs a socket each. The socket is 0600 in a 0700
 * directory: only the owning user connects, and that user can read every key in the home, so
 * the hello's `from` is taken as given, as the connection's remote peer is on a libp2p stream.
 */
import { lstatSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from '../codec.js'
import { listenPrivate, type PrivateSocket } from '../unix-socket.js'
import { equals } from 'uint8arrays/equals'
import { peerIdStringOfRaw, publicKeyOfPeer } from '../identity/keys.js'
import { MAX_DM_FRAME_BYTES } from './constants.js'
import { type FrameStream, prefixed, SocketFrames } from './frame-stream.js'

const log = logger('claudemesh:dm:local')

const uid = process.getuid?.()

/** The hello: the first frame an opener writes; the listener closes a socket whose `to` is not itself. */
const HelloSchema = z.object({ v: z.literal(1), from: zBytes({ len: 32 }), to: zBytes({ len: 32 }) }).strict()
const MAX_HELLO_BYTES = 256
/** An opener that sends no hello within this long is dropped. */
export const HELLO_TIMEOUT_MS = 10_000

/** `run/<mesh>/<last 12 chars of PeerId>.dm`: beside the control socket, as short (sun_path ≈ 107 bytes). */
export const localDmPath = (runDir: string, peerId: string): string => join(runDir, `${peerId.slice(-12)}.dm`)

export interface LocalDmInit {
  /** `run/<mesh>` of the shared home */
  runDir: string
  /** our PeerId */
  self: string
  /** serve an accepted, greeted socket: the §8.3 listener side with `from` from the hello */
  serve?: (frames: FrameStream, from: string) => void
  /** flood control: a blocked sender's hello is refused (SPEC.md §8.8) */
  blocked?: (peer: string) => boolean
}

export class LocalDm {
  private socket?: PrivateSocket
  private readonly sockets = new Set<Socket>()
  /** greeted sockets by the peer their hello named */
  private readonly byPeer = new Map<string, Set<SocketFrames>>()
  private readonly selfPub: Uint8Array
  readonly stats = { opened: 0, served: 0, refused: 0 }

  constructor(private readonly init: LocalDmInit) {
    this.selfPub = publicKeyOfPeer(init.self) as Uint8Array
  }

  get path(): string {
    return localDmPath(this.init.runDir, this.init.self)
  }

  /** Listen (only with `serve`). A newer incarnation of this session takes the path over. */
  async start(): Promise<void> {
    if (this.init.serve == null) return
    this.socket = await listenPrivate(this.path, socket => {
      this.accept(socket)
    })
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    const socket = this.socket
    this.socket = undefined
    await socket?.close()
  }

  /**
   * A stream to `peer`'s DM socket with our hello written, or undefined when the peer has no
   * socket in this home (not here, stopped, an older version): the caller dials it instead.
   */
  async open(peer: string, signal: AbortSignal): Promise<FrameStream | undefined> {
    const to = publicKeyOfPeer(peer)
    if (to == null) return undefined
    const path = localDmPath(this.init.runDir, peer)
    // only our own socket: another uid's would ack our DMs and drop them (SPEC.md §8.9). A
    // synchronous lstat of a local path costs ~9 µs of CPU; the promise form ~55 µs
    let st: ReturnType<typeof lstatSync>
    try {
      st = lstatSync(path, { throwIfNoEntry: false })
    } catch {
      st = undefined
    }
    if (st == null || !st.isSocket() || (uid != null && st.uid !== uid)) {
      if (st != null) log('%s is not our socket: dialling %s instead', path, peer)
      return undefined
    }
    const socket = await new Promise<Socket | undefined>(resolve => {
      const s = connect(path)
      const onAbort = (): void => {
        s.destroy()
        resolve(undefined)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      s.once('connect', () => {
        signal.removeEventListener('abort', onAbort)
        resolve(s)
      })
      s.once('error', err => {
        signal.removeEventListener('abort', onAbort)
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.trace('no DM socket for %s: %s', peer, err.message)
        resolve(undefined)
      })
    })
    if (socket == null) return undefined
    this.stats.opened++
    const frames = new SocketFrames(socket, MAX_DM_FRAME_BYTES)
    socket.write(prefixed([encodeFrame({ v: 1, from: this.selfPub, to })]))
    return frames
  }

  /** Close every socket `peer` opened to us (flood control blocked it, SPEC.md §8.8). */
  hangUp(peer: string): void {
    for (const frames of this.byPeer.get(peer) ?? []) frames.abort(new Error('blocked for flooding'))
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => {
      this.sockets.delete(socket)
    })
    const frames = new SocketFrames(socket, MAX_DM_FRAME_BYTES)
    // a timer cleared once the hello is in, not an AbortSignal.timeout: those fire anyway, a
    // DOMException with a stack each, 10 s after every first contact of a burst
    const timer = setTimeout(() => {
      frames.abort(new Error('no hello within the timeout'))
    }, HELLO_TIMEOUT_MS)
    timer.unref()
    void frames
      .read()
      .then(bytes => {
        clearTimeout(timer)
        const hello = decodeFrame(bytes, HelloSchema, MAX_HELLO_BYTES, 'dm hello')
        if (!equals(hello.to, this.selfPub)) throw new Error('hello for another peer')
        const from = peerIdStringOfRaw(hello.from)
        if (this.init.blocked?.(from) === true) throw new Error(`${from} is blocked for flooding`)
        this.stats.served++
        let set = this.byPeer.get(from)
        if (set == null) this.byPeer.set(from, (set = new Set()))
        set.add(frames)
        socket.once('close', () => {
          set.delete(frames)
          if (set.size === 0 && this.byPeer.get(from) === set) this.byPeer.delete(from)
        })
        this.init.serve?.(frames, from)
      })
      .catch((err: Error) => {
        clearTimeout(timer)
        this.stats.refused++
        log('refused a DM socket: %s', err.message)
        frames.abort(err)
      })
  }
}
