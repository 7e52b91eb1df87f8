/**
 * The relay's mailbox server on its own (SPEC.md §12.3–12.5): a real LevelDB store and group
 * commit, members played by raw mailbox streams (a stream pair, no network), so the delivery
 * order, the window and the re-send after a new stream are checked frame by frame.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Connection, Stream } from '@libp2p/interface'
import { type LengthPrefixedStream, lpStream, streamPair } from '@libp2p/utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  decodeDm,
  decodeMailboxFrame,
  encodeMailboxFrame,
  GroupCommit,
  idBytes,
  idText,
  lpOptions,
  MAILBOX_WINDOW,
  type MailboxFrame,
  type MeshLibp2p,
  MAX_MAILBOX_FRAME_BYTES,
  openStore,
  type Store,
  sublevel
} from '../../packages/node/src/index.js'
import { newEd25519Key, peerIdOfRaw } from '../../packages/node/src/identity/keys.js'
import { newMessageId, sealDm } from '../../packages/node/src/messaging/envelope.js'
import { MailboxServer } from '../src/mailbox.js'
import { createLog } from '../src/log.js'

const MESH = '0123456789abcdef'

interface Member {
  pub: Uint8Array
  conn: Connection
}

interface Open {
  lp: LengthPrefixedStream<Stream>
  stream: Stream
  /** frames read so far, by type */
  frames: MailboxFrame[]
  /** the ids of the mail received on this stream, in order */
  mail: string[]
  /** resolves when `pred` holds for what was read (checked after every frame) */
  until: (pred: () => boolean) => Promise<void>
}

async function newMember(): Promise<Member> {
  const key = await newEd25519Key()
  const pub = key.publicKey.raw
  return { pub, conn: { remotePeer: peerIdOfRaw(pub) } as unknown as Connection }
}

describe('mailbox server', () => {
  let dir: string
  let store: Store
  let mailbox: MailboxServer
  let handler: (stream: Stream, conn: Connection) => void
  const opened: Stream[] = []

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'claudemesh-mailbox-'))
    store = await openStore(join(dir, 'db'), { version: 1, migrations: { 0: async () => {} } })
    const libp2p = {
      handle: async (_: string, h: typeof handler) => {
        handler = h
      },
      unhandle: async () => {}
    } as unknown as MeshLibp2p
    mailbox = new MailboxServer(libp2p, sublevel(store, 'mailbox'), new GroupCommit(store), MESH, createLog('error'))
    await mailbox.start()
  })

  afterEach(async () => {
    for (const s of opened) s.abort(new Error('test over'))
    opened.length = 0
    await mailbox.stop()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** A member's mailbox stream to the relay, read in the background. */
  async function open(m: Member): Promise<Open> {
    const [mine, relays] = await streamPair()
    opened.push(mine, relays)
    handler(relays, m.conn)
    const lp = lpStream(mine, lpOptions(MAX_MAILBOX_FRAME_BYTES))
    const o: Open = { lp, stream: mine, frames: [], mail: [], until: async () => {} }
    let waiters: Array<{ pred: () => boolean; resolve: () => void; reject: (err: Error) => void }> = []
    let ended: Error | undefined
    o.until = async pred => {
      if (pred()) return
      if (ended != null) throw ended
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve, reject })
      })
    }
    void (async () => {
      try {
        while (true) {
          const f = decodeMailboxFrame((await lp.read()).subarray())
          o.frames.push(f)
          if (f.t === 'm') o.mail.push(idText(decodeDm(f.e).id))
          waiters = waiters.filter(w => {
            if (!w.pred()) return true
            w.resolve()
            return false
          })
        }
      } catch (err) {
        ended = err as Error
        for (const w of waiters) w.reject(ended)
        waiters = []
      }
    })()
    return o
  }

  /** `n` DMs from `from` to `to`, deposited on `o` and held by the relay; their ids in order. */
  async function deposit(o: Open, from: Member, to: Member, n: number): Promise<string[]> {
    const ids: string[] = []
    const frames: Uint8Array[] = []
    const now = Date.now()
    for (let i = 0; i < n; i++) {
      const id = newMessageId()
      ids.push(idText(id))
      const e = sealDm(
        MESH,
        new Uint8Array(32),
        { from: from.pub, to: to.pub, id, ts: now, exp: now + 600_000 },
        { body: `m${i}`, pri: 'next' }
      )
      frames.push(encodeMailboxFrame({ t: 'm', e }))
    }
    const want = new Set(ids)
    const held = (): boolean => {
      for (const f of o.frames) if (f.t === 'h') for (const id of f.ids) want.delete(idText(id))
      return want.size === 0
    }
    await o.lp.writeV(frames)
    await o.until(held)
    return ids
  }

  const ack = async (o: Open, ids: string[]): Promise<void> => {
    for (let i = 0; i < ids.length; i += 1024) await o.lp.write(encodeMailboxFrame({ t: 'a', ids: ids.slice(i, i + 1024).map(idBytes) }))
  }

  const taken = async (n: number): Promise<void> => {
    let left = n
    await new Promise<void>(resolve => {
      const on = (e: CustomEvent<{ ids: string[] }>): void => {
        left -= e.detail.ids.length
        if (left > 0) return
        mailbox.removeEventListener('mailbox:taken', on)
        resolve()
      }
      mailbox.addEventListener('mailbox:taken', on)
    })
  }

  it('drains a box deeper than the window in deposit order, once each, with deposits arriving while it drains', async () => {
    const sender = await newMember()
    const other = await newMember()
    const bob = await newMember()
    const s = await open(sender)
    const o = await open(other)
    const first = await deposit(s, sender, bob, MAILBOX_WINDOW + 500)
    const b = await open(bob)
    // the window: exactly MAILBOX_WINDOW arrive before any ack, the oldest first
    await b.until(() => b.mail.length >= MAILBOX_WINDOW)
    expect(b.mail).toEqual(first.slice(0, MAILBOX_WINDOW))
    // more mail while the stream drains, from the same sender and another one
    const more = await deposit(s, sender, bob, 300)
    const others = await deposit(o, other, bob, 200)
    expect(mailbox.size.messages).toBe(first.length + more.length + others.length)
    // acks open the window; everything arrives, each once, in deposit order
    const total = first.length + more.length + others.length
    const all = taken(total)
    let acked = 0
    while (acked < b.mail.length) {
      const upTo = b.mail.length
      await ack(b, b.mail.slice(acked, upTo))
      acked = upTo
      await b.until(() => b.mail.length > acked || b.mail.length === total)
    }
    expect(b.mail).toEqual([...first, ...more, ...others])
    expect(new Set(b.mail).size).toBe(b.mail.length)
    await all
    expect(mailbox.size.messages).toBe(0)
  })

  it('a new stream sends again, from the start and in order, what the old one did not get acknowledged; later deposits follow', async () => {
    const sender = await newMember()
    const bob = await newMember()
    const s = await open(sender)
    const ids = await deposit(s, sender, bob, 300)
    const b1 = await open(bob)
    await b1.until(() => b1.mail.length === 300)
    expect(b1.mail).toEqual(ids)
    // acks for the first 100 and for 150..159, the rest unacknowledged
    const done = taken(110)
    await ack(b1, [...ids.slice(0, 100), ...ids.slice(150, 160)])
    await done
    expect(mailbox.size.messages).toBe(190)
    const rest = [...ids.slice(100, 150), ...ids.slice(160)]
    // a newer stream from bob replaces the old one and starts over with what is left
    const b2 = await open(bob)
    await b2.until(() => b2.mail.length === rest.length)
    expect(b2.mail).toEqual(rest)
    const later = await deposit(s, sender, bob, 20)
    await b2.until(() => b2.mail.length === rest.length + later.length)
    expect(b2.mail).toEqual([...rest, ...later])
    // the old stream got nothing more once replaced
    expect(b1.mail).toEqual(ids)
    // all acked: the box is empty and the sender has its receipts
    const all = taken(rest.length + later.length)
    await ack(b2, b2.mail)
    await all
    expect(mailbox.size.messages).toBe(0)
    expect(mailbox.size.receipts).toBe(300 + 20)
  })

  it('mail that leaves the box before its turn (refused by the recipient) is skipped, not sent', async () => {
    const sender = await newMember()
    const bob = await newMember()
    const s = await open(sender)
    const ids = await deposit(s, sender, bob, MAILBOX_WINDOW + 100)
    const b1 = await open(bob)
    await b1.until(() => b1.mail.length === MAILBOX_WINDOW)
    // the first stream dies; on the next, bob refuses (n) the 100 that the window held back
    // before the relay reaches them, then acks the rest
    const b2 = await open(bob)
    await b2.until(() => b2.mail.length >= 1)
    const dropped = taken(100)
    await b2.lp.write(encodeMailboxFrame({ t: 'n', ids: ids.slice(MAILBOX_WINDOW).map(idBytes) }))
    await dropped
    const done = taken(MAILBOX_WINDOW)
    await b2.until(() => b2.mail.length === MAILBOX_WINDOW)
    await ack(b2, b2.mail)
    await done
    // one more deposit: had the refused ones been sent, they would come before it
    const last = await deposit(s, sender, bob, 1)
    await b2.until(() => b2.mail.includes(last[0] as string))
    expect(b2.mail).toEqual([...ids.slice(0, MAILBOX_WINDOW), ...last])
    expect(mailbox.size.messages).toBe(1)
    expect(mailbox.stats.dropped).toBe(100)
  })

  it("refuses a deposit in another member's name and stores nothing", async () => {
    const alice = await newMember()
    const mallory = await newMember()
    const bob = await newMember()
    const m = await open(mallory)
    const id = newMessageId()
    const now = Date.now()
    const forged = sealDm(
      MESH,
      new Uint8Array(32),
      { from: alice.pub, to: bob.pub, id, ts: now, exp: now + 60_000 },
      { body: 'x', pri: 'next' }
    )
    await m.lp.write(encodeMailboxFrame({ t: 'm', e: forged }))
    await m.until(() => m.frames.some(f => f.t === 'x'))
    expect(m.frames).toEqual([{ t: 'x', why: 'invalid', ids: [id] }])
    expect(mailbox.size.messages).toBe(0)
    // mallory's own deposit still goes through
    await deposit(m, mallory, bob, 1)
    expect(mailbox.size.messages).toBe(1)
  })
})
