/**
 * The outbound DM channel (SPEC.md §8.3) against its narrow host interface, over an in-memory
 * libp2p stream pair: order, acks, read receipts, resend after a reset, refusals. Fast, and
 * beside the network tests in messaging.test.ts and dm-faults.test.ts.
 */
import type { Stream } from '@libp2p/interface'
import { lpStream, streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { Channel, type ChannelHost } from '../src/messaging/channel.js'
import { lpFrames } from '../src/messaging/frame-stream.js'
import { MAX_DM_FRAME_BYTES } from '../src/messaging/constants.js'
import { idBytes, idText } from '../src/messaging/envelope.js'
import type { RefuseWhy } from '../src/messaging/flood.js'
import { type DmFrame, decodeDmFrame, encodeDmFrame } from '../src/messaging/frames.js'
import { lpOptions } from '../src/messaging/lp.js'
import type { OutboxItem } from '../src/messaging/outbox.js'

const PEER = '12D3KooWGJfg4ZGxVbfYV2QXnXzJ1tEYzrGMkBSzgHLuXBHpQEfL'

function item(n: number): OutboxItem {
  const id = n.toString(16).padStart(32, '0')
  return { id, to: PEER, env: new TextEncoder().encode(`message ${n}`), createdAt: Date.now(), exp: Date.now() + 60_000 }
}

/** The recipient's end of one stream: every frame it reads, and a way to answer. */
class Far {
  readonly frames: DmFrame[] = []
  private readonly lp
  private waiters: Array<() => void> = []
  constructor(readonly stream: Stream) {
    const lp = lpStream(stream, lpOptions(MAX_DM_FRAME_BYTES))
    this.lp = lp
    void (async () => {
      try {
        while (true) {
          this.frames.push(decodeDmFrame((await lp.read()).subarray()))
          for (const w of this.waiters.splice(0)) w()
        }
      } catch {}
    })()
  }

  get messages(): string[] {
    return this.frames.flatMap(f => (f.t === 'm' ? [new TextDecoder().decode(f.e)] : []))
  }

  async until(pred: () => boolean, what: string): Promise<void> {
    const end = Date.now() + 10_000
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>(resolve => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50).unref()
      })
    }
  }

  async send(f: DmFrame): Promise<void> {
    await this.lp.write(encodeDmFrame(f))
  }
}

/** A host over an in-memory outbox: `pending` is what was not acked, as the real Outbox keeps it. */
function world() {
  const queued = new Map<string, OutboxItem>()
  const acked: string[] = []
  const read: string[] = []
  const refusals: Array<{ why: RefuseWhy; until: number }> = []
  const fars: Far[] = []
  const host: ChannelHost = {
    connect: async () => {
      const [out, inb] = await streamPair()
      fars.push(new Far(inb))
      return lpFrames(out, MAX_DM_FRAME_BYTES)
    },
    pending: () => [...queued.values()],
    onAck: async (_peer, ids) => {
      for (const id of ids) {
        if (queued.delete(id)) acked.push(id)
      }
    },
    onRead: async (_peer, ids) => {
      read.push(...ids)
    },
    onRefuse: (_peer, why, until) => {
      refusals.push({ why, until })
    }
  }
  const enqueue = (ch: Channel, items: OutboxItem[]): void => {
    for (const i of items) queued.set(i.id, i)
    ch.push(items)
  }
  return { host, queued, acked, read, refusals, fars, enqueue }
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

describe('Channel', () => {
  it('writes queued messages in send order on one stream, and is idle once every one is acked', async () => {
    const w = world()
    const ch = new Channel(PEER, w.host)
    const items = Array.from({ length: 300 }, (_, i) => item(i))
    w.enqueue(ch, items.slice(0, 100))
    w.enqueue(ch, items.slice(100))
    await until(() => w.fars[0] != null, 'a stream')
    const far = w.fars[0] as Far
    await far.until(() => far.messages.length === 300, '300 messages')
    expect(far.messages).toEqual(items.map((_, i) => `message ${i}`))
    expect(ch.idle).toBe(false)
    await far.send({ t: 'a', ids: items.map(i => idBytes(i.id)) })
    await until(() => ch.idle, 'the channel to go idle')
    expect(w.acked).toEqual(items.map(i => i.id))
    expect(w.fars).toHaveLength(1)
    ch.close()
  })

  it("sends read receipts as r frames and reports the recipient's receipts to the host", async () => {
    const w = world()
    const ch = new Channel(PEER, w.host)
    const ids = [item(1).id, item(2).id]
    ch.receipt(ids)
    await until(() => w.fars[0] != null, 'a stream')
    const far = w.fars[0] as Far
    await far.until(() => far.frames.some(f => f.t === 'r'), 'a receipt frame')
    const r = far.frames.find(f => f.t === 'r') as Extract<DmFrame, { t: 'r' }>
    expect(r.ids.map(idText)).toEqual(ids)
    await far.send({ t: 'r', ids: [idBytes(item(7).id)] })
    await until(() => w.read.length === 1, 'the receipt to reach the host')
    expect(w.read).toEqual([item(7).id])
    ch.close()
  })

  it('after the stream resets, sends everything unacked again, in order, on a new stream', async () => {
    const w = world()
    const ch = new Channel(PEER, w.host)
    const items = Array.from({ length: 10 }, (_, i) => item(i))
    w.enqueue(ch, items)
    await until(() => w.fars[0] != null, 'a stream')
    const first = w.fars[0] as Far
    await first.until(() => first.messages.length === 10, 'ten messages')
    await first.send({ t: 'a', ids: items.slice(0, 4).map(i => idBytes(i.id)) })
    await until(() => w.acked.length === 4, 'four acks')
    first.stream.abort(new Error('the network went away'))
    await until(() => w.fars.length === 2, 'a second stream')
    const second = w.fars[1] as Far
    await second.until(() => second.messages.length === 6, 'the six unacked messages again')
    expect(second.messages).toEqual(items.slice(4).map((_, i) => `message ${i + 4}`))
    ch.close()
  })

  it('a refusal pauses the channel until the recipient said, then sends the refused messages again', async () => {
    const w = world()
    const ch = new Channel(PEER, w.host)
    const items = [item(1), item(2), item(3)]
    w.enqueue(ch, items)
    await until(() => w.fars[0] != null, 'a stream')
    const far = w.fars[0] as Far
    await far.until(() => far.messages.length === 3, 'three messages')
    const refusedAt = Date.now()
    await far.send({ t: 'a', ids: [idBytes(items[0]!.id)] })
    await far.send({ t: 'x', ids: items.slice(1).map(i => idBytes(i.id)), why: 'rate', ms: 300 })
    await until(() => w.refusals.length === 1, 'the refusal to reach the host')
    expect(w.refusals[0]?.why).toBe('rate')
    expect(w.refusals[0]!.until).toBeGreaterThanOrEqual(refusedAt + 300)
    await far.until(() => far.messages.length === 5, 'the refused two again')
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(300)
    expect(far.messages.slice(3)).toEqual(['message 2', 'message 3'])
    ch.close()
  })

  it('a closed channel writes nothing more and leaves its messages to the host', async () => {
    const w = world()
    const ch = new Channel(PEER, w.host)
    ch.close()
    w.enqueue(ch, [item(1)])
    ch.kick()
    await new Promise(resolve => setImmediate(resolve))
    expect(w.fars).toHaveLength(0)
    expect([...w.queued.keys()]).toEqual([item(1).id])
  })
})
