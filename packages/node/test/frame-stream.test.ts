/**
 * Frames over a same-home socket (SPEC.md §8.9): the reader splits what arrives into frames
 * whatever the chunks, refuses a length over its limit, and ends with the frames it had.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prefixed, SocketFrames } from '../src/messaging/frame-stream.js'

describe('socket frames', () => {
  let dir: string
  let server: Server
  const accepted: Socket[] = []
  let next: ((s: Socket) => void) | undefined
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'frames-'))
    server = createServer(s => {
      accepted.push(s)
      next?.(s)
    })
    await new Promise<void>(resolve => server.listen(join(dir, 's'), resolve))
  })
  afterAll(async () => {
    for (const s of accepted) s.destroy()
    await new Promise(resolve => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })

  /** Both ends of a fresh connection: the opener's socket and the listener's. */
  async function pair(): Promise<[Socket, Socket]> {
    const theirs = new Promise<Socket>(resolve => {
      next = resolve
    })
    const ours = await new Promise<Socket>((resolve, reject) => {
      const s = connect(join(dir, 's'), () => {
        resolve(s)
      })
      s.once('error', reject)
    })
    return [ours, await theirs]
  }

  const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

  it('reads frames split at every byte and frames that share a chunk, in order', async () => {
    const [out, inb] = await pair()
    const reader = new SocketFrames(inb, 1024)
    const sent = [bytes(0, 0), bytes(1, 1), bytes(127, 2), bytes(128, 3), bytes(300, 4), bytes(1024, 5)]
    const wire = prefixed(sent)
    // the first three frames byte by byte, each byte its own chunk; the rest in one write
    const split = prefixed(sent.slice(0, 3)).byteLength
    for (let i = 0; i < split; i++) {
      out.write(wire.subarray(i, i + 1))
      await new Promise(resolve => setImmediate(resolve))
    }
    out.write(wire.subarray(split))
    const got: Uint8Array[] = []
    for (let i = 0; i < sent.length; i++) got.push(await reader.read())
    expect(got.map(f => [f.byteLength, f[0]])).toEqual(sent.map(f => [f.byteLength, f[0]]))
    out.destroy()
  })

  it('closes the socket on a length over its limit, or a prefix longer than any length under it', async () => {
    for (const wire of [prefixed([bytes(1025, 7)]).subarray(0, 2), Buffer.from([0x80, 0x80, 0x80])]) {
      const [out, inb] = await pair()
      const reader = new SocketFrames(inb, 1024)
      const closed = new Promise(resolve => inb.once('close', resolve))
      out.write(wire)
      await expect(reader.read()).rejects.toMatchObject({
        name: wire.byteLength === 2 ? 'InvalidDataLengthError' : 'InvalidDataLengthLengthError'
      })
      await closed
      expect(reader.open).toBe(false)
      out.destroy()
    }
  })

  it('gives the frames it has, then ends with UnexpectedEOFError; a writer of a closed socket is refused', async () => {
    const [out, inb] = await pair()
    const reader = new SocketFrames(inb, 1024)
    const writer = new SocketFrames(out, 1024)
    await writer.writeV([bytes(3, 1), bytes(4, 2)])
    out.end()
    await new Promise(resolve => inb.once('end', resolve))
    expect((await reader.read()).byteLength).toBe(3)
    expect((await reader.read()).byteLength).toBe(4)
    await expect(reader.read()).rejects.toMatchObject({ name: 'UnexpectedEOFError' })
    writer.abort(new Error('done'))
    await expect(writer.write(bytes(1, 1))).rejects.toThrow('done')
  })
})
