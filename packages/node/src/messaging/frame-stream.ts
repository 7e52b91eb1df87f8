/**
 * Length-prefixed frames (an unsigned varint, then the bytes: SPEC.md §8.3), as the DM
 * channel and the DM server use them, over either a libp2p stream (`lpFrames`, through
 * `lpStream`) or a same-home unix socket (`SocketFrames`, §8.9). The socket needs none of a
 * libp2p stream's machinery (its event targets, send queue and byte lists cost a burst of DMs
 * a tenth of its CPU, and a first contact ~0.2 ms to set up): it splits what arrives into
 * frames and writes each batch of frames with one `write`.
 */
import type { Socket } from 'node:net'
import type { MessageStream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { lpOptions } from './lp.js'

export interface FrameStream {
  /** The next frame; rejects once the stream ended (`UnexpectedEOFError`) or failed. */
  read(): Promise<Uint8Array>
  /** Resolves when the frame was handed on (after a `drain` when the socket's buffer is full). */
  write(frame: Uint8Array): Promise<void>
  writeV(frames: Uint8Array[]): Promise<void>
  abort(err: Error): void
  readonly open: boolean
}

/** Frames over a libp2p stream. */
export function lpFrames(stream: MessageStream, maxBytes: number): FrameStream {
  const lp = lpStream(stream, lpOptions(maxBytes))
  return {
    read: async () => (await lp.read()).subarray(),
    write: async frame => lp.write(frame),
    writeV: async frames => lp.writeV(frames),
    abort: err => {
      stream.abort(err)
    },
    get open() {
      return stream.status === 'open'
    }
  }
}

const named = (name: string, message: string): Error => Object.assign(new Error(message), { name })

/** Bytes of the unsigned varint encoding of `n`. */
const varintBytes = (n: number): number => {
  let k = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    k++
  }
  return k
}

/** One buffer: each frame behind its varint length. */
export function prefixed(frames: Uint8Array[]): Buffer {
  let size = 0
  for (const f of frames) size += varintBytes(f.byteLength) + f.byteLength
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (const f of frames) {
    let n = f.byteLength
    while (n >= 0x80) {
      out[at++] = (n & 0x7f) | 0x80
      n = Math.floor(n / 0x80)
    }
    out[at++] = n
    out.set(f, at)
    at += f.byteLength
  }
  return out
}

/**
 * Frames read past this many unread pause the socket until the reader catches up: the DM
 * window bounds an honest sender's unacked frames well below it (§8.3).
 */
const MAX_UNREAD = 4096

/** Frames over a connected `net.Socket`. */
export class SocketFrames implements FrameStream {
  private buf: Buffer = Buffer.alloc(0)
  private readonly frames: Uint8Array[] = []
  private head = 0
  private waiting?: { resolve: (f: Uint8Array) => void; reject: (err: Error) => void }
  private ended?: Error
  private readonly maxLengthBytes: number

  constructor(
    readonly socket: Socket,
    private readonly maxBytes: number
  ) {
    this.maxLengthBytes = varintBytes(maxBytes)
    socket.on('data', chunk => {
      this.onData(chunk)
    })
    socket.on('error', err => {
      this.end(err)
    })
    // the error is made only when it is the first end: an error's stack costs ~3-10 µs, and a
    // socket ends and closes, or is aborted and then closes (thousands at once when a burst's
    // idle channels close)
    const eof = (): void => {
      if (this.ended == null) this.end(named('UnexpectedEOFError', 'the socket closed'))
    }
    socket.once('end', eof)
    socket.once('close', eof)
  }

  get open(): boolean {
    return this.ended == null && !this.socket.destroyed
  }

  async read(): Promise<Uint8Array> {
    if (this.head < this.frames.length) {
      const f = this.frames[this.head++] as Uint8Array
      if (this.head === this.frames.length) {
        this.frames.length = 0
        this.head = 0
        if (this.socket.isPaused() && this.ended == null) this.socket.resume()
      }
      return f
    }
    if (this.ended != null) throw this.ended
    if (this.waiting != null) throw new Error('one read at a time')
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
    })
  }

  async write(frame: Uint8Array): Promise<void> {
    await this.writeV([frame])
  }

  async writeV(frames: Uint8Array[]): Promise<void> {
    if (this.ended != null) throw this.ended
    if (this.socket.write(prefixed(frames))) return
    // the socket's buffer is full: wait for it to drain (or the socket to go)
    await new Promise<void>((resolve, reject) => {
      const settle = (): void => {
        this.socket.off('drain', settle)
        this.socket.off('close', settle)
        if (this.socket.destroyed) reject(this.ended ?? named('UnexpectedEOFError', 'the socket closed'))
        else resolve()
      }
      this.socket.on('drain', settle)
      this.socket.on('close', settle)
    })
  }

  abort(err: Error): void {
    this.end(err)
    this.socket.destroy()
  }

  private end(err: Error): void {
    if (this.ended != null) return
    this.ended = err
    const w = this.waiting
    this.waiting = undefined
    // frames already split off stay readable; the error comes after them
    if (w != null) w.reject(err)
  }

  private onData(chunk: Buffer): void {
    if (this.ended != null) return
    const buf = this.buf.byteLength === 0 ? chunk : Buffer.concat([this.buf, chunk])
    let at = 0
    try {
      while (at < buf.byteLength) {
        const frame = this.frameAt(buf, at)
        if (frame == null) break
        this.push(buf.subarray(frame.start, frame.end))
        at = frame.end
      }
    } catch (err) {
      this.buf = Buffer.alloc(0)
      this.abort(err as Error)
      return
    }
    // what is left of a chunk is copied, so a short tail does not keep its 64 KB chunk alive
    this.buf = at === buf.byteLength ? Buffer.alloc(0) : Buffer.from(buf.subarray(at))
    if (this.frames.length - this.head > MAX_UNREAD) this.socket.pause()
  }

  /** The whole frame whose length prefix starts at `at`, or undefined when more bytes are due. */
  private frameAt(buf: Buffer, at: number): { start: number; end: number } | undefined {
    let len = 0
    for (let i = 0; at + i < buf.byteLength; i++) {
      if (i >= this.maxLengthBytes) throw named('InvalidDataLengthLengthError', 'frame length prefix too long')
      const b = buf[at + i] as number
      len += (b & 0x7f) * 2 ** (7 * i)
      if (b < 0x80) {
        if (len > this.maxBytes) throw named('InvalidDataLengthError', `frame too long: ${len} > ${this.maxBytes}`)
        const start = at + i + 1
        return start + len <= buf.byteLength ? { start, end: start + len } : undefined
      }
    }
    return undefined
  }

  private push(frame: Uint8Array): void {
    const w = this.waiting
    if (w != null) {
      this.waiting = undefined
      w.resolve(frame)
    } else {
      this.frames.push(frame)
    }
  }
}
