/**
 * The relay between hosts that cannot reach each other: three network namespaces (./netns.ts)
 * with the relay in R and one `claudemesh daemon` in each of A and B, each with its own home
 * (two machines). A and B reach only R, so everything between them goes through the relay:
 * a circuit-relay connection while both are up, the relay's mailbox while one is away.
 * Runs only as root with `ip netns`; skipped with a message otherwise.
 *
 * DEBUG='claudemesh:dm,claudemesh:mailbox' reaches the daemons and puts the relay's log at debug.
 * A failing test prints the relay's health and the last lines of every process.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ControlClient,
  controlSocketPath,
  type InboxMessage,
  type MessageStatus,
  type PeerInfo,
  type SendResult
} from '@claudemesh/node/client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { BIN, netnsUnavailable, type Proc, removeStale, run, Topology, until } from './netns.js'

const skip = netnsUnavailable()
if (skip != null) console.error(`relay/test/netns.test.ts: skipping the multi-host relay tests: ${skip}`)

const MESH = 'team'
const RELAY_PORT = 4001

interface Member {
  name: string
  host: 'a' | 'b'
  home: string
  id: string
  proc: Proc
}

describe.skipIf(skip != null)('relay across network namespaces (A ⇄ R ⇄ B, no route from A to B)', () => {
  const topo = new Topology()
  const procs: Proc[] = []
  const timings: Record<string, number> = {}
  const notes: string[] = []
  let dir = ''
  let relay: Proc
  let relayAddr = ''
  let healthUrl = ''
  const m: { a: Member; b: Member } = {} as { a: Member; b: Member }

  const envOf = (home: string): NodeJS.ProcessEnv => ({ ...process.env, CLAUDEMESH_HOME: home, CLAUDEMESH_SESSION: '', CLAUDEMESH_LAN: '' })

  /** A CLI verb from our own namespace: it talks to the daemon over its unix control socket. */
  async function verb<T = unknown>(home: string, args: string[]): Promise<T> {
    const r = await run(process.execPath, [BIN, ...args], { env: envOf(home) })
    if (r.code !== 0) throw new Error(`claudemesh ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
    return (args.includes('--json') ? JSON.parse(r.stdout) : r.stdout) as T
  }

  /** The daemon's control socket, for bursts and polls (one connection instead of one process each). */
  async function control<T>(who: Member, fn: (c: ControlClient) => Promise<T>): Promise<T> {
    const c = await ControlClient.connect(controlSocketPath(who.home, MESH, who.id))
    try {
      return await fn(c)
    } finally {
      c.close()
    }
  }

  async function startDaemon(who: Member): Promise<void> {
    who.proc = topo.spawn(
      who.host,
      process.execPath,
      [BIN, 'daemon', '--name', who.name, '--groups', 'dev', '--listen', '/ip4/0.0.0.0/tcp/0'],
      envOf(who.home),
      who.name
    )
    procs.push(who.proc)
    who.id = (await who.proc.line(/^\/ip4\/.*\/p2p\/(\S+)$/, { timeoutMs: 20_000 }))[1] ?? ''
  }

  async function sendAll(from: Member, to: string, bodies: string[]): Promise<string[]> {
    return control(from, async c => {
      const ids: string[] = []
      for (const message of bodies) {
        const r = await c.call<{ results: SendResult[] }>('send', { to, message })
        ids.push(r.results[0]?.id ?? '')
      }
      return ids
    })
  }

  async function statuses(who: Member, ids: string[]): Promise<MessageStatus[]> {
    return control(who, async c => Promise.all(ids.map(async id => c.call<MessageStatus>('status', { id }))))
  }

  /** Poll until every message reached `status` (nothing is printed when a status changes). */
  async function reach(who: Member, ids: string[], status: MessageStatus['status'], timeoutMs: number): Promise<MessageStatus[]> {
    let last: MessageStatus[] = []
    try {
      return await until(
        `${ids.length} messages of ${who.name} to be ${status}`,
        async () => {
          last = await statuses(who, ids)
          return last.every(s => s.status === status) ? last : undefined
        },
        { timeoutMs, intervalMs: 250 }
      )
    } catch (err) {
      throw new Error(
        `${(err as Error).message}; last seen: ${JSON.stringify(last.map(s => ({ id: s.id, status: s.status, times: s.times })))}`
      )
    }
  }

  /**
   * B's own messages sent while it was cut off reached A (the caller checks that), so at B they
   * must end `delivered`: acked by A, or by the relay's receipt after it held them — even a
   * receipt that comes right behind the relay's `h` ack, while `held` is being written (a bug
   * this caught). Once the relay has no receipt left, B has recorded all it will get; what is
   * still `held` then was lost.
   */
  async function settledAtSender(who: Member, ids: string[]): Promise<void> {
    const stuck = await until(
      `${who.name}'s messages to be delivered`,
      async () => {
        const before = await statuses(who, ids)
        if (before.every(s => s.status === 'delivered')) return []
        if (!before.every(s => s.status === 'held' || s.status === 'delivered') || (await health()).mailbox.receipts > 0) return undefined
        return (await statuses(who, ids)).filter(s => s.status !== 'delivered')
      },
      { timeoutMs: 20_000, intervalMs: 250 }
    )
    if (stuck.length === 0) return
    expect.fail(
      `${stuck.length} of ${who.name}'s messages reached their recipient but stay "${stuck[0]?.status}": the relay's receipt was lost`
    )
  }

  async function peerOf(who: Member, other: Member): Promise<PeerInfo | undefined> {
    return (await verb<{ peers: PeerInfo[] }>(who.home, ['peers', '--json'])).peers.find(p => p.id === other.id)
  }

  async function health(): Promise<{
    connections: number
    reservations: number
    mailbox: { messages: number; receipts: number; sessions: number; delivered: number }
  }> {
    return topo.fetchJson('r', healthUrl)
  }

  async function inbox(who: Member): Promise<InboxMessage[]> {
    return (await verb<{ messages: InboxMessage[] }>(who.home, ['inbox', '--all', '--keep-unread', '--limit', '500', '--json'])).messages
  }

  beforeAll(async () => {
    const t0 = Date.now()
    const stale = await removeStale()
    if (stale.length > 0) console.error(`removed namespaces of crashed runs: ${stale.join(', ')}`)
    await topo.create()
    dir = await mkdtemp(join(tmpdir(), 'cm-netns-'))
    const homeA = join(dir, 'a')
    const homeB = join(dir, 'b')
    await Promise.all([mkdir(homeA), mkdir(homeB)])
    m.a = { name: 'alice', host: 'a', home: homeA, id: '', proc: undefined as unknown as Proc }
    m.b = { name: 'bob', host: 'b', home: homeB, id: '', proc: undefined as unknown as Proc }

    // the owner (A's machine) makes the mesh and a relay invite; the relay runs in R
    await verb(homeA, ['mesh', 'create', MESH])
    const relayToken = (await verb<string>(homeA, ['mesh', 'invite', MESH, '--relay', '--expires', '1h'])).trim()
    relay = topo.spawn(
      'r',
      process.execPath,
      [
        BIN,
        'relay',
        '--invite',
        relayToken,
        '--data',
        join(dir, 'relay'),
        '--listen',
        `/ip4/${topo.service}/tcp/${RELAY_PORT}`,
        '--health',
        '127.0.0.1:0',
        '--log-level',
        process.env.DEBUG?.includes('claudemesh') === true ? 'debug' : 'info'
      ],
      envOf(join(dir, 'relay-home')),
      'relay'
    )
    procs.push(relay)
    relayAddr = (await relay.line(/^\/ip4\/.*\/p2p\/\S+$/, { timeoutMs: 20_000 }))[0]
    expect(relayAddr.startsWith(`/ip4/${topo.service}/tcp/${RELAY_PORT}/p2p/`)).toBe(true)
    healthUrl = (JSON.parse((await relay.line(/^\{.*"msg":"relay ready".*\}$/))[0]) as { health: string }).health

    // the mesh file lists the relay; the member invite made afterwards carries it to B
    await verb(homeA, ['mesh', 'relays', MESH, '--add', relayAddr])
    const member = (await verb<string>(homeA, ['mesh', 'invite', MESH, '--expires', '1h'])).trim()
    await verb(homeB, ['mesh', 'join', member])
    expect((await verb<{ relays: string[] }>(homeB, ['mesh', 'relays', MESH, '--json'])).relays).toEqual([relayAddr])

    await Promise.all([startDaemon(m.a), startDaemon(m.b)])
    timings.setupMs = Date.now() - t0
    // every test starts from two members that know each other (so each can also run alone)
    await m.a.proc.line(/^\+ bob \(/)
    await m.b.proc.line(/^\+ alice \(/)
    timings.joinMs = Date.now() - t0 - timings.setupMs
    // a member announces itself before its reservation is made, then again with the circuit
    // address: each must learn the other's, or DMs can only go through the mailbox
    await Promise.all(
      (
        [
          [m.a, m.b],
          [m.b, m.a]
        ] as Array<[Member, Member]>
      ).map(async ([who, other]) =>
        until(
          `${who.name} to learn ${other.name}'s circuit address`,
          async () => ((await peerOf(who, other))?.addrs.includes(`${relayAddr}/p2p-circuit/p2p/${other.id}`) === true ? true : undefined),
          { timeoutMs: 30_000 }
        )
      )
    )
    timings.circuitAddrsMs = Date.now() - t0 - timings.setupMs
  }, 90_000)

  afterEach(async ctx => {
    if (ctx.task.result?.state !== 'fail') return
    const h = relay?.running === true ? await health().catch(err => (err as Error).message) : 'relay not running'
    console.error(
      `relay health: ${JSON.stringify(h)}\noutput of the processes, last lines:\n${procs
        .filter(p => p.running)
        .map(p => p.tail(80))
        .join('\n')}`
    )
  })

  afterAll(async () => {
    await Promise.all(procs.map(async p => p.stop('SIGTERM', 5_000)))
    await topo.destroy()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
    console.error(`netns relay test timings (ms): ${JSON.stringify(timings)}${notes.map(n => `\n${n}`).join('')}`)
  }, 30_000)

  it('A and B see each other online, though neither can reach the other: their connection is relayed', async () => {
    const peers = await verb<{ self: PeerInfo; peers: PeerInfo[] }>(m.a.home, ['peers', '--json'])
    const bob = peers.peers.find(p => p.id === m.b.id)
    expect(bob).toMatchObject({ name: 'bob', online: true })
    // B announces an address through the relay, and A listens through it too (a reservation)
    expect(bob?.addrs).toContain(`${relayAddr}/p2p-circuit/p2p/${m.b.id}`)
    const info = await verb<{ listenAddrs: string[] }>(m.a.home, ['info', '--json'])
    expect(info.listenAddrs).toContain(`${relayAddr}/p2p-circuit/p2p/${m.a.id}`)

    // B's daemon really listens on 10.x.2.2: R can connect to it, A cannot, and R forwards nothing
    const direct = m.b.proc.stdout
      .map(l => new RegExp(`^/ip4/${topo.addr.b.replace(/\./g, '\\.')}/tcp/(\\d+)/`).exec(l))
      .find(x => x != null)
    const port = Number(direct?.[1])
    expect(port).toBeGreaterThan(0)
    expect(await topo.sysctl('r', 'net.ipv4.ip_forward')).toBe('0')
    expect(await topo.connect('r', topo.addr.b, port)).toBe('connected')
    expect(await topo.connect('a', topo.addr.b, port)).toMatch(/^(ENETUNREACH|EHOSTUNREACH|ETIMEDOUT)$/)
    expect(await topo.connect('a', topo.service, RELAY_PORT)).toBe('connected')

    // the kernels' own view: every TCP connection of A and of B is with R, none between them
    const ofR = new Set([topo.service, topo.addr.ra, topo.addr.rb])
    for (const h of ['a', 'b'] as const) {
      const open = (await topo.tcp(h)).filter(t => t.state === 'ESTABLISHED')
      expect(open.length).toBeGreaterThan(0)
      expect(
        open.filter(t => !ofR.has(t.remote.split(':')[0] ?? '')),
        `${h}'s connections`
      ).toEqual([])
    }
  })

  it('DMs both ways go straight over the relayed connection and are delivered', async () => {
    const markB = m.b.proc.mark()
    const [sent] = await verb<SendResult[]>(m.a.home, ['send', 'bob', 'hello bob, from A', '--json'])
    expect(sent).toMatchObject({ to: m.b.id, name: 'bob', status: 'pending' })
    const id = sent?.id ?? ''
    await m.b.proc.line(/^> alice: hello bob, from A$/, { since: markB })
    const s = await until("A's DM to be delivered", async () => {
      const st = await verb<MessageStatus>(m.a.home, ['status', id, '--json'])
      return st.status === 'delivered' ? st : undefined
    })
    // acked by B itself on the DM stream (a relayed connection), never parked in the mailbox
    expect(s.times.held).toBeUndefined()

    const markA = m.a.proc.mark()
    const [reply] = await verb<SendResult[]>(m.b.home, ['send', 'alice', 'hi A, got it', '--reply-to', id, '--json'])
    await m.a.proc.line(/^> bob: hi A, got it$/, { since: markA })
    await reach(m.b, [reply?.id ?? ''], 'delivered', 10_000)
    const got = (await inbox(m.a)).find(x => x.id === reply?.id)
    expect(got).toMatchObject({ from: m.b.id, fromName: 'bob', to: m.a.id, body: 'hi A, got it', replyTo: id })
  })

  it('a group message reaches the other member of the group, not its sender', async () => {
    const markA = m.a.proc.mark()
    const markB = m.b.proc.mark()
    const [sent] = await verb<SendResult[]>(m.a.home, ['send', '@dev', 'standup in five', '--json'])
    // handed to at least one peer by gossipsub: B, over the relayed connection
    expect(sent).toMatchObject({ to: '@dev', status: 'delivered' })
    await m.b.proc.line(/^> alice @dev: standup in five$/, { since: markB })
    expect((await inbox(m.b)).find(x => x.id === sent?.id)).toMatchObject({
      from: m.a.id,
      to: '@dev',
      group: 'dev',
      body: 'standup in five'
    })
    expect((await inbox(m.a)).some(x => x.id === sent?.id)).toBe(false)
    expect(m.a.proc.since(markA, /standup in five/)).toEqual([])
  })

  it('a partition between B and the relay: DMs are held by the relay, then delivered once, in order, when it heals', async () => {
    const markA = m.a.proc.mark()
    const markB = m.b.proc.mark()
    // cut R's end of the link to B: B keeps its address and routes, and gets them back as they were
    await topo.setLink('r-b', 'down')
    const cut = Date.now()
    const toB = Array.from({ length: 5 }, (_, i) => `partitioned ${i + 1}`)
    const toA = ['from B while cut off 1', 'from B while cut off 2']
    const idsA = await sendAll(m.a, 'bob', toB)
    const idsB = await sendAll(m.b, 'alice', toA)

    // A's relayed connection to B looks open until something notices it is dead (the
    // connection monitor's ping or the channel's ack timeout); then the DMs go to the mailbox
    // (members' ping timeout is at least 30 s in a mesh with relays, SPEC §4: up to 40 s here)
    await reach(m.a, idsA, 'held', 60_000)
    timings.heldAfterCutMs = Date.now() - cut
    const h = await health()
    expect(h.mailbox.messages).toBe(toB.length)
    expect(m.b.proc.since(markB, /^> /)).toEqual([])
    expect((await statuses(m.b, idsB)).map(s => s.status)).toEqual(['pending', 'pending'])

    await topo.setLink('r-b', 'up')
    const healed = Date.now()
    await m.b.proc.line(new RegExp(`^> alice: ${toB.at(-1)}$`), { since: markB, timeoutMs: 40_000 })
    timings.deliveredToBAfterHealMs = Date.now() - healed
    await m.a.proc.line(new RegExp(`^> bob: ${toA.at(-1)}$`), { since: markA, timeoutMs: 40_000 })
    timings.deliveredToAAfterHealMs = Date.now() - healed

    // exactly once each, in send order: the daemon prints only new inbox entries
    expect(m.b.proc.since(markB, /^> alice: partitioned/)).toEqual(toB.map(b => `> alice: ${b}`))
    expect(m.a.proc.since(markA, /^> bob: from B while cut off/)).toEqual(toA.map(b => `> bob: ${b}`))
    const inB = (await inbox(m.b)).filter(x => x.from === m.a.id && x.body.startsWith('partitioned '))
    expect(inB.map(x => x.body)).toEqual(toB)
    expect(inB.map(x => x.id)).toEqual(idsA)
    const inA = (await inbox(m.a)).filter(x => x.from === m.b.id && x.body.startsWith('from B while cut off'))
    expect(inA.map(x => x.id)).toEqual(idsB)

    // the relay tells A its held messages were delivered
    const done = await reach(m.a, idsA, 'delivered', 20_000)
    timings.senderDeliveredAfterHealMs = Date.now() - healed
    for (const s of done) expect(s.times.held).toBeLessThanOrEqual(s.times.delivered ?? 0)
    await settledAtSender(m.b, idsB)
  }, 130_000)

  it('a long partition, past the point where both ends dropped their connection: B reconnects by itself and everything is delivered once', async () => {
    const markA = m.a.proc.mark()
    const markB = m.b.proc.mark()
    await topo.setLink('r-b', 'down')
    const cut = Date.now()
    const early = await sendAll(m.b, 'alice', ['from B at the cut'])
    // both ends give the dead connection up on their own (ping failures): the relay drops B's
    // connection and mailbox session, and B's kernel no longer has a connection with R
    const ip = (hostPort: string): string => hostPort.split(':')[0] ?? ''
    await until(
      'the relay and B to drop their connection',
      async () => {
        if ((await health()).mailbox.sessions !== 1) return undefined
        const atR = (await topo.tcp('r')).filter(t => t.state === 'ESTABLISHED' && ip(t.remote) === topo.addr.b)
        const atB = (await topo.tcp('b')).filter(t => t.state === 'ESTABLISHED' && ip(t.remote) !== '127.0.0.1')
        return atR.length === 0 && atB.length === 0 ? true : undefined
      },
      { timeoutMs: 60_000, intervalMs: 500 }
    )
    timings.longCutDroppedMs = Date.now() - cut
    // A may still count B online (its grace runs): the first DM tries a channel, fails to
    // dial and goes to the mailbox. Only then the rest, which follow it there: a burst sent
    // while that dial is in flight can be split between the two paths and arrive out of
    // order (a product bug, see the opt-in test at the end).
    const toB = ['long cut 1', 'long cut 2', 'long cut 3']
    const idsA = await sendAll(m.a, 'bob', toB.slice(0, 1))
    await reach(m.a, idsA, 'held', 30_000)
    idsA.push(...(await sendAll(m.a, 'bob', toB.slice(1))))
    const late = await sendAll(m.b, 'alice', ['from B, cut off'])
    await reach(m.a, idsA, 'held', 30_000)
    expect((await health()).mailbox.messages).toBe(toB.length)
    // B cannot hand its own messages to anyone: they wait in its outbox
    expect((await statuses(m.b, [...early, ...late])).map(s => s.status)).toEqual(['pending', 'pending'])

    await topo.setLink('r-b', 'up')
    const healed = Date.now()
    await m.b.proc.line(new RegExp(`^> alice: ${toB.at(-1)}$`), { since: markB, timeoutMs: 30_000 })
    timings.longCutDeliveredToBAfterHealMs = Date.now() - healed
    // who dialled whom to heal: B to the relay's service address, or the relay to B's own address
    const back = (await topo.tcp('b')).filter(t => t.state === 'ESTABLISHED')
    notes.push(`after the long cut, B's connections: ${back.map(t => `${t.local} ⇄ ${t.remote}`).join(', ')}`)
    await m.a.proc.line(/^> bob: from B, cut off$/, { since: markA, timeoutMs: 30_000 })
    timings.longCutDeliveredToAAfterHealMs = Date.now() - healed
    expect(m.b.proc.since(markB, /^> alice: long cut/)).toEqual(toB.map(b => `> alice: ${b}`))
    expect(m.a.proc.since(markA, /^> bob: from B/)).toEqual(['> bob: from B at the cut', '> bob: from B, cut off'])
    await reach(m.a, idsA, 'delivered', 20_000)
    timings.longCutSenderDeliveredAfterHealMs = Date.now() - healed
    await settledAtSender(m.b, [...early, ...late])
  }, 130_000)

  it('offline delivery: the relay keeps DMs for a stopped member and delivers them when it returns', async () => {
    const N = 20
    // after the long cut A counts B online again once B's next record crosses the relay;
    // a goodbye sent before that changes nothing at A
    await until('alice to count bob online again', async () => ((await peerOf(m.a, m.b))?.online === true ? true : undefined), {
      timeoutMs: 30_000
    })
    const markA = m.a.proc.mark()
    expect(await m.b.proc.stop()).toBe(0)
    // B said goodbye: A knows it is offline, so the DMs go to the relay's mailbox at once
    // the goodbye crosses the relay; if it is lost, the presence TTL ends bob's record
    await m.a.proc.line(/^- bob \(/, { since: markA, timeoutMs: 60_000 })
    const bodies = Array.from({ length: N }, (_, i) => `offline ${String(i + 1).padStart(2, '0')}`)
    const t0 = Date.now()
    const ids = await sendAll(m.a, 'bob', bodies)
    await reach(m.a, ids, 'held', 15_000)
    timings.offlineHeldMs = Date.now() - t0
    expect((await health()).mailbox.messages).toBe(N)
    expect(await m.a.proc.stop()).toBe(0)

    // B comes back while A is away: its mail is waiting at the relay
    const t1 = Date.now()
    await startDaemon(m.b)
    const from = `(?:alice|${m.a.id.slice(-8)})`
    await m.b.proc.line(new RegExp(`^> ${from}: ${bodies.at(-1)}$`), { timeoutMs: 30_000 })
    timings.offlineReceivedAfterRestartMs = Date.now() - t1
    expect(m.b.proc.since(0, new RegExp(`^> ${from}: offline `)).map(l => l.replace(/^> [^:]*: /, ''))).toEqual(bodies)
    const got = (await inbox(m.b)).filter(x => x.from === m.a.id && x.body.startsWith('offline '))
    expect(got.map(x => x.id)).toEqual(ids)
    expect(got.map(x => x.body)).toEqual(bodies)
    await until('the relay to drop the delivered mail', async () => ((await health()).mailbox.messages === 0 ? true : undefined))

    // A comes back: the relay's receipts turn its held messages into delivered ones
    const t2 = Date.now()
    await startDaemon(m.a)
    const done = await reach(m.a, ids, 'delivered', 30_000)
    timings.offlineDeliveredAfterSenderRestartMs = Date.now() - t2
    expect(done.every(s => s.times.held != null && s.times.delivered != null)).toBe(true)
    const last = await verb<MessageStatus>(m.a.home, ['status', ids.at(-1) ?? '', '--json'])
    expect(last).toMatchObject({ to: m.b.id, toName: 'bob', status: 'delivered' })
    await until('the relay to forget the receipts A took', async () => ((await health()).mailbox.receipts === 0 ? true : undefined))
  }, 130_000)

  // A bug this caught: a DM's route was picked before its durable write and the DM pushed into
  // that channel after; a channel that failed in between had diverted its peer to the mailbox,
  // the push reopened it, later DMs went straight to the mailbox and the reopened channel
  // diverted the earlier DM after them: out of order.
  it('a burst to a member that just vanished (still counted online) arrives in order', async () => {
    await m.a.proc.line(/^\+ bob \(/)
    // no goodbye: the relay and A lose their connections to B at once, but A counts B online for its grace
    await m.b.proc.stop('SIGKILL')
    await until('the relay to lose B', async () => ((await health()).mailbox.sessions === 1 ? true : undefined))
    const bodies = Array.from({ length: 30 }, (_, i) => `burst ${String(i + 1).padStart(2, '0')}`)
    const ids = await sendAll(m.a, 'bob', bodies)
    await reach(m.a, ids, 'held', 30_000)
    await startDaemon(m.b)
    await Promise.all(bodies.map(async b => m.b.proc.line(new RegExp(`: ${b}$`), { timeoutMs: 30_000 })))
    expect(m.b.proc.since(0, /: burst \d+$/).map(l => l.replace(/^> [^:]*: /, ''))).toEqual(bodies)
  }, 60_000)
})
