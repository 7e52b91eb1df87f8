/** A client for a node's control socket: `call(method, params)` resolves with the result. */
import { connect, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { ControlError } from '../errors.js'
import { assertPrivate } from '../home.js'
import { lineSplitter, ResponseSchema } from './protocol.js'

export class RemoteError extends Error {
  constructor(name: string, message: string) {
    super(message)
    this.name = name
  }
}

export class ControlClient {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()

  private constructor(private readonly socket: Socket) {
    socket.on(
      'data',
      lineSplitter(
        line => {
          this.onLine(line)
        },
        () => {
          this.fail(new ControlError('control response too large'))
        }
      )
    )
    socket.on('close', () => {
      this.fail(new ControlError('the node closed the control connection'))
    })
    socket.on('error', () => {})
  }

  static async connect(path: string, opts: { timeoutMs?: number } = {}): Promise<ControlClient> {
    // a socket another user planted would receive what we send (and answer what it likes)
    assertPrivate(dirname(path))
    assertPrivate(path)
    return new Promise((resolve, reject) => {
      const socket = connect(path)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new ControlError(`no answer from the node at ${path}`))
      }, opts.timeoutMs ?? 5_000)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(new ControlClient(socket))
      })
      socket.once('error', err => {
        clearTimeout(timer)
        reject(new ControlError(`cannot reach the node at ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
      })
    })
  }

  async call<T = unknown>(method: string, params: unknown = {}, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      opts.signal?.addEventListener(
        'abort',
        () => {
          this.pending.delete(id)
          reject(new ControlError(`${method} aborted`))
        },
        { once: true }
      )
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private onLine(line: string): void {
    let msg
    try {
      msg = ResponseSchema.parse(JSON.parse(line))
    } catch {
      this.fail(new ControlError('the node sent a malformed response'))
      return
    }
    const p = this.pending.get(msg.id)
    if (p == null) return
    this.pending.delete(msg.id)
    if (msg.ok) p.resolve(msg.result)
    else p.reject(new RemoteError(msg.error.name, msg.error.message))
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.socket.destroy()
  }
}
