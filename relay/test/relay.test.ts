/**
 * The relay in one process with real members on loopback. Members listen on nothing
 * (`listen: []`): they reach each other only through the relay's circuit, or its mailbox.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createMeshNode,
  decodeDm,
  decodeMailboxFrame,
  encodeMailboxFrame,
  lpOptions,
  mailboxProtocol,
  type Mesh,
  type MeshNode,
  type MeshNodeInit,
  paths
} from '../../packages/node/src/index.js'
import { PairKeys } from '../../packages/node/src/crypto/index.js'
import { newMessageId, openDm, sealDm } from '../../packages/node/src/messaging/envelope.js'
import { FAST, homeWithMesh, until } from '../../packages/node/test/helpers.js'
import { createLog, createRelay, type Relay } from '../src/index.js'

const quiet = createLog('error')

async function startRelay(data: string, mesh: Mesh, limits = {}, port = 0): Promise<Relay> {
  const relay = await createRelay({ data, mesh, listen: [`/ip4/127.0.0.1/tcp/${port}`], log: quiet, limits })
  await relay.start()
  return relay
}

describe('relay', () => {
  let home: string
  let mesh: Mesh
  let cleanup: () => Promise<void>
  let relay: Relay
  let relayAddr: string
  const nodes: MeshNode[] = []

  async function member(name: string, extra: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
    const n = await createMeshNode({
      home,
      mesh: 'test',
      session: randomUUID(),
      name,
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST,
      ...extra
    })
    await n.start()
    nodes.push(n)
    return n
  }

  const seen = async (a: MeshNode, b: MeshNode, online = true): Promise<void> => {
    await until(
      a,
      ['peer:join', 'peer:update', 'peer:leave'],
      () => (a.presence.get(b.peerId)?.online === true) === online,
      10_000,
      `${a.self().name} to see ${b.self().name} ${online ? 'online' : 'offline'}`
    )
  }

  beforeAll(async () => {
    const h = await homeWithMesh()
    home = h.home
    mesh = h.mesh
    cleanup = h.cleanup
    relay = await startRelay(join(home, 'relay'), mesh)
    relayAddr = relay.multiaddrs()[0] as string
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await relay?.stop()
    await cleanup()
  })

  it('members that can reach only the relay meet through it: DMs go through its mailbox at once, or over its circuit once connected', async () => {
    const a = await member('alice')
    const b = await member('bob')
    await seen(a, b)
    await until(
      a.libp2p,
      ['self:peer:update', 'transport:listening'],
      () => a.multiaddrs().length > 0,
      10_000,
      'alice to listen through the relay'
    )
    expect(a.multiaddrs().every(x => x.includes('/p2p-circuit/'))).toBe(true)
    const body = async (text: string): Promise<string> => {
      const got = new Promise<string>(resolve => {
        b.addEventListener(
          'message:receive',
          e => {
            resolve(e.detail.body)
          },
          { once: true }
        )
      })
      const [sent] = await a.mail.send('bob', text)
      expect(await got).toBe(text)
      await waitStatus(a, sent?.id as string, 'delivered')
      return sent?.id as string
    }
    // not connected to bob: store and forward, delivered at once since bob is online (discovery
    // may have dialled bob through the relay's circuit meanwhile: that connection goes first)
    await a.libp2p.hangUp(b.libp2p.peerId)
    const stored = relay.mailbox.stats.stored
    const first = await body('through the mailbox')
    expect((await a.mail.status(first))?.times.held).toBeTypeOf('number')
    expect(relay.mailbox.stats.stored).toBe(stored + 1)
    // connected over the relay's circuit: the direct channel, nothing stored
    await a.dialer.connect(b.peerId)
    const conn = a.libp2p.getConnections(b.libp2p.peerId)[0]
    expect(conn?.remoteAddr.toString()).toContain('/p2p-circuit')
    // end to end: Noise between alice and bob, authenticated against bob's key
    expect(conn?.encryption).toBe('/noise')
    const second = await body('over the circuit')
    expect((await a.mail.status(second))?.times.held).toBeUndefined()
    expect(relay.mailbox.stats.stored).toBe(stored + 1)
    await Promise.all([a.stop(), b.stop()])
  })

  it('carries group messages between members that can reach only the relay', async () => {
    const a = await member('lena', { groups: [{ name: 'dev' }] })
    const b = await member('mike', { groups: [{ name: 'dev' }] })
    const c = await member('nora', { groups: [{ name: 'dev' }] })
    await Promise.all([seen(a, b), seen(a, c), seen(b, c)])
    const got = (n: MeshNode): Promise<string> =>
      new Promise(resolve => {
        n.addEventListener(
          'message:receive',
          e => {
            resolve(`${e.detail.to} ${e.detail.body}`)
          },
          { once: true }
        )
      })
    const [gb, gc] = [got(b), got(c)]
    await a.mail.send('@dev', 'to the group')
    expect(await gb).toBe('@dev to the group')
    expect(await gc).toBe('@dev to the group')
    await Promise.all([a.stop(), b.stop(), c.stop()])
  })

  it('holds DMs for a member that is away, delivers them once and in order when it returns, and tells the sender', async () => {
    const a = await member('carol')
    const bSession = randomUUID()
    let b = await member('dave', { session: bSession })
    await seen(a, b)
    await b.stop()
    await seen(a, b, false)
    const sent = []
    for (let i = 0; i < 30; i++) sent.push(...(await a.mail.send('dave', `away ${i}`)))
    const ids = sent.map(s => s.id)
    await Promise.all(ids.map(async id => waitStatus(a, id, 'held')))
    expect(relay.mailbox.size.messages).toBeGreaterThanOrEqual(30)
    // the sender's view of the relay: what it holds of ours, per relay (SPEC.md §12.4)
    expect(a.info().relays).toEqual([{ addr: relayAddr, id: relay.peerId, connected: true, mailbox: true, held: 30, received: 0 }])
    // the sender goes away too: the relay alone has them
    await a.stop()
    const received: string[] = []
    b = await createMeshNode({
      home,
      mesh: 'test',
      session: bSession,
      name: 'dave',
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST
    })
    b.addEventListener('message:receive', e => {
      received.push(e.detail.body)
    })
    await b.start()
    nodes.push(b)
    await until(b, ['message:receive'], () => received.length >= 30, 15_000, 'dave to receive 30')
    expect(received).toEqual(Array.from({ length: 30 }, (_, i) => `away ${i}`))
    const inbox = await b.mail.inbox.list({ unreadOnly: false })
    expect(inbox.map(m => m.id)).toEqual(ids)
    expect(b.info().relays[0]?.received).toBeGreaterThanOrEqual(30)
    // the sender returns and learns they were delivered
    const a2 = await createMeshNode({
      home,
      mesh: 'test',
      session: a.key.session,
      name: 'carol',
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST
    })
    nodes.push(a2)
    await a2.start()
    await Promise.all(ids.map(async id => waitStatus(a2, id, 'delivered')))
    expect(a2.info().relays[0]?.held).toBe(0)
    await Promise.all([a2.stop(), b.stop()])
  })

  it('cannot open what it stores: the stored envelope opens for the recipient only, and no plaintext reaches its disk', async () => {
    const data = join(home, 'relay-secrecy')
    const r = await startRelay(data, mesh)
    const addr = r.multiaddrs()[0] as string
    const mk = async (name: string, session = randomUUID()): Promise<MeshNode> => {
      const n = await createMeshNode({
        home,
        mesh: 'test',
        session,
        name,
        summary: `summary of ${name}`,
        listen: [],
        relays: [addr],
        registry: false,
        control: false,
        presence: FAST
      })
      await n.start()
      nodes.push(n)
      return n
    }
    const a = await mk('erin')
    const bSession = randomUUID()
    const b = await mk('frank', bSession)
    await seen(a, b)
    // the relay registry knows both members, verified, but not their names or summaries
    const listed = r.presence.list()
    expect(listed.map(p => p.id).sort()).toEqual([a.peerId, b.peerId].sort())
    expect(listed.every(p => p.name === '' && p.summary === '' && p.groups.length === 0)).toBe(true)
    await b.stop()
    await seen(a, b, false)
    const marker = randomBytes(24).toString('hex')
    const [sent] = await a.mail.send('frank', `secret ${marker}`)
    await waitStatus(a, sent?.id as string, 'held')
    await r.stop()
    // everything on the relay's disk: no marker, no name, no content key in its mesh file
    const files = await filesUnder(data)
    for (const f of files) {
      const text = (await readFile(f)).toString('latin1')
      expect(text.includes(marker), f).toBe(false)
      expect(text.includes('summary of erin'), f).toBe(false)
    }
    const kept = JSON.parse(await readFile(join(data, 'mesh.json'), 'utf8')) as Record<string, unknown>
    expect(kept.contentSecret).toBeUndefined()
    expect(kept.networkSecret).toBeTypeOf('string')
    // the envelope the relay stored, read back from its LevelDB
    const r2 = await startRelay(data, mesh)
    const stored: Uint8Array[] = []
    for await (const v of (r2 as unknown as { mailbox: { db: { values: (o: object) => AsyncIterable<Uint8Array> } } }).mailbox.db.values({
      gte: 'm!',
      lt: 'm"'
    }))
      stored.push(v)
    await r2.stop()
    expect(stored).toHaveLength(1)
    const env = decodeDm(stored[0] as Uint8Array)
    // with everything the relay has (its own key, the network secret) it does not open
    const relayKey = (await import('../../packages/node/src/identity/keys.js')).decodePrivateKey(
      (await readFile(join(data, 'relay.key'), 'utf8')).trim(),
      'relay.key'
    )
    const asRelay = new PairKeys(relayKey.publicKey.raw, relayKey.raw.subarray(0, 32), mesh.networkSecret, mesh.id)
    for (const pub of [env.from, env.to]) expect(() => openDm(mesh.id, asRelay.key(pub), env)).toThrow(/authenticate/)
    // with the recipient's key and the content secret it does: the test opens the right thing
    const asFrank = new PairKeys(env.to, b.key.privateKey.raw.subarray(0, 32), mesh.contentSecret as Uint8Array, mesh.id)
    expect(openDm(mesh.id, asFrank.key(env.from), env).body).toBe(`secret ${marker}`)
    await a.stop()
  })

  it("refuses deposits beyond a recipient's quota, keeps them at the sender and delivers them all later, in order", async () => {
    const r = await startRelay(join(home, 'relay-quota'), mesh, { perRecipient: 5 })
    const addr = r.multiaddrs()[0] as string
    const opts = { home, mesh: 'test', listen: [], relays: [addr], registry: false, control: false, presence: FAST }
    const a = await createMeshNode({ ...opts, session: randomUUID(), name: 'gina' })
    const bSession = randomUUID()
    let b = await createMeshNode({ ...opts, session: bSession, name: 'hank' })
    await a.start()
    await b.start()
    nodes.push(a, b)
    await seen(a, b)
    await b.stop()
    await seen(a, b, false)
    const sent = []
    for (let i = 0; i < 8; i++) sent.push(...(await a.mail.send('hank', `q ${i}`)))
    await Promise.all(sent.slice(0, 5).map(async s => waitStatus(a, s.id, 'held')))
    await until(r.mailbox, ['mailbox:refused'], () => (r.mailbox.stats.refused.quota ?? 0) >= 1, 10_000, 'a quota refusal')
    expect(r.mailbox.size.messages).toBe(5)
    expect((await a.mail.status(sent[7]?.id as string))?.status).toBe('pending')
    const received: string[] = []
    b = await createMeshNode({ ...opts, session: bSession, name: 'hank' })
    b.addEventListener('message:receive', e => {
      received.push(e.detail.body)
    })
    await b.start()
    nodes.push(b)
    await until(b, ['message:receive'], () => received.length >= 8, 20_000, 'hank to receive 8')
    expect(received).toEqual(Array.from({ length: 8 }, (_, i) => `q ${i}`))
    await Promise.all(sent.map(async s => waitStatus(a, s.id, 'delivered', 20_000)))
    await Promise.all([a.stop(), b.stop(), r.stop()])
  }, 40_000)

  it("refuses a deposit in another member's name and survives garbage on the mailbox stream", async () => {
    const a = await member('ivy')
    const m = await member('mallory')
    await seen(a, m)
    const relayId = relay.peerId
    const conn = m.libp2p.getConnections().find(c => c.remotePeer.toString() === relayId)
    if (conn == null) throw new Error('mallory is not connected to the relay')
    const stream = await conn.newStream(mailboxProtocol(mesh.id))
    const lp = lpStream(stream, lpOptions(128 * 1024))
    // an envelope that claims to be from ivy, deposited by mallory
    const ivyPub = a.key.privateKey.publicKey.raw
    const forged = sealDm(
      mesh.id,
      new Uint8Array(32),
      { from: ivyPub, to: m.key.privateKey.publicKey.raw, id: newMessageId(), ts: Date.now(), exp: Date.now() + 60_000 },
      { body: 'forged', pri: 'next' }
    )
    await lp.write(encodeMailboxFrame({ t: 'm', e: forged }))
    let answer = decodeMailboxFrame((await lp.read()).subarray())
    while (answer.t !== 'x') answer = decodeMailboxFrame((await lp.read()).subarray())
    expect(answer).toMatchObject({ t: 'x', why: 'invalid' })
    const stored = relay.mailbox.stats.stored
    // garbage: the relay closes that stream and nothing else
    await lp.write(new Uint8Array([1, 2, 3, 4, 5]))
    await expect(lp.read()).rejects.toThrow()
    expect(relay.mailbox.stats.stored).toBe(stored)
    const got = new Promise<string>(resolve => {
      m.addEventListener(
        'message:receive',
        e => {
          resolve(e.detail.body)
        },
        { once: true }
      )
    })
    await a.mail.send('mallory', 'still working')
    expect(await got).toBe('still working')
  })

  it('enforces one live presence per session key across machines: the older node is told and stops', async () => {
    const session = randomUUID()
    const first = await member('jack', { session })
    const watcher = await member('kim')
    await seen(watcher, first)
    // the same session key on another machine (another home, the key file copied)
    const other = join(home, 'other-machine')
    await mkdir(join(other, 'meshes'), { recursive: true, mode: 0o700 })
    await copyFile(paths.mesh(home, 'test'), paths.mesh(other, 'test'))
    const keyFile = paths.sessionKey(home, 'test', session)
    await mkdir(join(paths.sessionKey(other, 'test', session), '..'), { recursive: true, mode: 0o700 })
    await copyFile(keyFile, paths.sessionKey(other, 'test', session))
    const stopped = new Promise<string>(resolve => {
      first.addEventListener(
        'node:stopped',
        e => {
          resolve(e.detail.reason)
        },
        { once: true }
      )
    })
    const second = await createMeshNode({
      home: other,
      mesh: 'test',
      session,
      name: 'jack',
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST
    })
    nodes.push(second)
    await second.start()
    expect(await stopped).toBe('replaced')
    await until(
      watcher,
      ['peer:update', 'peer:join'],
      () => watcher.presence.get(second.peerId)?.incarnation === second.presence.incarnation,
      10_000,
      'kim to see the new incarnation'
    )
    expect(watcher.presence.get(second.peerId)?.online).toBe(true)
  })
})

async function waitStatus(n: MeshNode, id: string, status: string, timeoutMs = 15_000): Promise<void> {
  const rank = ['pending', 'held', 'delivered', 'read', 'failed']
  const reached = async (): Promise<boolean> => rank.indexOf((await n.mail.status(id))?.status ?? 'pending') >= rank.indexOf(status)
  if (await reached()) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      n.removeEventListener('message:status', on)
      void n.mail.status(id).then(s => {
        reject(new Error(`message ${id} is ${s?.status}, not ${status}`))
      })
    }, timeoutMs)
    function on(e: CustomEvent<{ id: string; status: string }>): void {
      if (e.detail.id !== id || rank.indexOf(e.detail.status) < rank.indexOf(status)) return
      clearTimeout(timer)
      n.removeEventListener('message:status', on)
      resolve()
    }
    n.addEventListener('message:status', on)
  })
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else out.push(p)
  }
  return out
}
