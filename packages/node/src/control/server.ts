/**
 * The control server: a unix socket under the home through which CLI verbs, hooks and tools
 * act on a running node. Methods are registered with a zod schema for their params; a bad
 * request gets a clear error and never reaches the handler.
 */
import type { Socket } from 'node:net'
import { logger } from '@libp2p/logger'
import type { z } from 'zod'
import { ControlError } from '../errors.js'
import { listenPrivate, type PrivateSocket } from '../unix-socket.js'
import { lineSplitter, RequestSchema } from './protocol.js'

const log = logger('claudemesh:control')

interface Method {
  schema: z.ZodType
  handler: (params: unknown, signal: AbortSignal) => Promise<unknown>
}

export class ControlServer {
  private readonly methods = new Map<string, Method>()
  private socket?: PrivateSocket
  private readonly sockets = new Set<Socket>()

  constructor(readonly path: string) {}

  register<S extends z.ZodType>(name: string, schema: S, handler: (params: z.output<S>, signal: AbortSignal) => Promise<unknown>): void {
    this.methods.set(name, { schema, handler: handler as Method['handler'] })
  }

  async start(): Promise<void> {
    this.socket = await listenPrivate(this.path, socket => {
      this.serve(socket)
    })
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await this.socket?.close()
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket)
    const abort = new AbortController()
    socket.on('close', () => {
      this.sockets.delete(socket)
      abort.abort()
    })
    socket.on('error', err => {
      log('control socket error: %s', err.message)
    })
    const send = (msg: unknown): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`)
    }
    socket.on(
      'data',
      lineSplitter(
        line => {
          void this.handle(line, send, abort.signal)
        },
        () => {
          send({ id: -1, ok: false, error: { name: 'FrameTooLargeError', message: 'control request too large' } })
          socket.destroy()
        }
      )
    )
  }

  private async handle(line: string, send: (msg: unknown) => void, signal: AbortSignal): Promise<void> {
    let id = -1
    try {
      const parsed = RequestSchema.safeParse(JSON.parse(line))
      if (!parsed.success) throw new ControlError('malformed control request: expected {id, method, params}')
      const req = parsed.data
      id = req.id
      const m = this.methods.get(req.method)
      if (m == null) throw new ControlError(`unknown method "${req.method}"`)
      const params = m.schema.safeParse(req.params ?? {})
      if (!params.success) {
        const issue = params.error.issues[0]
        throw new ControlError(`invalid params for ${req.method}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
      }
      send({ id, ok: true, result: (await m.handler(params.data, signal)) ?? null })
    } catch (err) {
      const e = err as Error
      send({ id, ok: false, error: { name: e.name === 'SyntaxError' ? 'ControlError' : e.name, message: e.message } })
    }
  }
}
