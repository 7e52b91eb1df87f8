/**
 * Fault tests for the relay's mailbox (SPEC.md §12). The relay runs as a real child process
 * (`claudemesh relay`), so it can be killed with SIGKILL and restarted on the same port and
 * --data directory; members are in-process MeshNodes with no listener of their own
 * (`listen: []`), so everything between them goes through the relay: deposits, held mail and
 * the live circuit. Nothing sleeps to wait for the network: the tests wait on node events and
 * on the relay's ready line (timers only bound the waits).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import {
  createMesh,
  createMeshNode,
  type DeliveryStatus,
  type InboxMessage,
  type MeshNode,
  type MeshNodeInit,
  paths
} from '@claudemesh/node'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from '../../packages/node/test/helpers.js'

const CLI = fileURLToPath(new URL('../../packages/cli/dist/claudemesh.mjs', import.meta.url))
const MESH = 'faults'
const FAST = { heartbeatMs: 500, ttlMs: 3_000, graceMs: 1_500 }

/** `claudemesh relay` as a child process, killed -9 and restarted on one port and one --data. */
class RelayProcess {
  addr = ''
  kills = 0
  private child?: ChildProcess
  private exited?: Promise<void>
  private stderr = ''
  private closed = false

  constructor(
    readonly home: string,
    readonly data: string,
    readonly port: number
  ) {}

  /** Spawn it; resolves with its multiaddr once it prints it, which it does when ready. */
  async start(): Promise<string> {
    if (this.closed) throw new Error('the test is over')
    const child = spawn(
      process.execPath,
      [CLI, 'relay', '--mesh', MESH, '--data', this.data, '--listen', `/ip4/127.0.0.1/tcp/${this.port}`, '--log-level', 'warn'],
      {
        env: { ...process.env, CLAUDEMESH_HOME: this.home },
        stdio: ['ignore', 'pipe', 'pipe']
      }
    )
    this.child = child
    this.exited = new Promise(resolve => {
      child.once('exit', () => {
        resolve()
      })
    })
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8_000)
    })
    const addr = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve)
      child.once('exit', (code, signal) => {
        reject(new Error(`the relay exited (${code ?? signal}) before it was ready: ${this.stderr}`))
      })
    })
    if (this.addr !== '' && addr !== this.addr) throw new Error(`the relay came back as ${addr}, not ${this.addr}`)
    this.addr = addr
    return addr
  }

  /** kill -9; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child
    if (child == null) return
    this.child = undefined
    child.kill('SIGKILL')
    this.kills++
    await this.exited
  }

  async restart(): Promise<void> {
    await this.kill()
    await this.start()
  }

  /** Kill it for good: no start after this. */
  async close(): Promise<void> {
    this.closed = true
    await this.kill()
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const addr = server.address()
  await new Promise(resolve => {
    server.close(resolve)
  })
  if (addr == null || typeof addr === 'string') throw new Error('no free port')
  return addr.port
}

/** One test's world: a home with the mesh, the relay process, the member nodes. */
interface World {
  home: string
  relay: RelayProcess
  nodes: Set<MeshNode>
}
let world: World | undefined

async function setup(): Promise<World> {
  const home = await mkdtemp(join(tmpdir(), 'cm-relay-faults-'))
  await createMesh(home, MESH)
  const relay = new RelayProcess(home, join(home, 'relay-data'), await freePort())
  world = { home, relay, nodes: new Set() }
  await relay.start()
  return world
}

afterEach(async () => {
  const w = world
  world = undefined
  if (w == null) return
  await w.relay.close()
  await Promise.all([...w.nodes].map(async n => n.stop().catch(() => {})))
  await rm(w.home, { recursive: true, force: true })
})

/** What a node reports: `message:receive` (in order, and per id) and `message:status`. */
interface Seen {
  received: string[]
  counts: Map<string, number>
  /** latest status per id */
  status: Map<string, DeliveryStatus>
  /** ids that ever reached each status */
  reached: Map<DeliveryStatus, Set<string>>
}

function watch(node: MeshNode): Seen {
  const seen: Seen = { received: [], counts: new Map(), status: new Map(), reached: new Map() }
  node.addEventListener('message:receive', e => {
    seen.received.push(e.detail.id)
    seen.counts.set(e.detail.id, (seen.counts.get(e.detail.id) ?? 0) + 1)
  })
  node.addEventListener('message:status', e => {
    seen.status.set(e.detail.id, e.detail.status)
    let ids = seen.reached.get(e.detail.status)
    if (ids == null) seen.reached.set(e.detail.status, (ids = new Set()))
    ids.add(e.detail.id)
  })
  return seen
}

const reached = (seen: Seen, status: DeliveryStatus): number => seen.reached.get(status)?.size ?? 0
const wasHeld = (seen: Seen, id: string): boolean => seen.reached.get('held')?.has(id) === true

/**
 * A member with no listener of its own: only the relay (its circuit and its mailbox) reaches
 * it. Its events are watched from before it starts, so nothing that arrives early is missed.
 */
async function member(
  w: World,
  name: string,
  session: string,
  listen: string[] = [],
  limits?: MeshNodeInit['limits']
): Promise<{ node: MeshNode; seen: Seen }> {
  const node = await createMeshNode({
    home: w.home,
    mesh: MESH,
    session,
    name,
    listen,
    relays: [w.relay.addr],
    registry: false,
    control: false,
    presence: FAST,
    limits
  })
  const seen = watch(node)
  w.nodes.add(node)
  await node.start()
  return { node, seen }
}

async function stop(w: World, node: MeshNode): Promise<void> {
  w.nodes.delete(node)
  await node.stop()
}

async function bothSee(a: MeshNode, b: MeshNode): Promise<void> {
  await until(
    [a, b],
    ['peer:join', 'peer:update'],
    () => a.presence.get(b.peerId)?.online === true && b.presence.get(a.peerId)?.online === true,
    20_000,
    'alice and bob to see each other through the relay'
  )
}

/** alice and bob meet once (a DM goes only to a peer the table knows), then bob leaves. */
async function acquainted(w: World): Promise<{ a: MeshNode; seen: Seen; bSession: string; bId: string }> {
  const { node: a, seen } = await member(w, 'alice', randomUUID())
  const bSession = randomUUID()
  const { node: b } = await member(w, 'bob', bSession)
  await bothSee(a, b)
  const bId = b.peerId
  await stop(w, b)
  await until(a, ['peer:leave'], () => a.presence.get(bId)?.online !== true, 10_000, 'alice to see bob leave')
  return { a, seen, bSession, bId }
}

/**
 * Send DMs numbered `from`…`from + n − 1` (the number is the body), `burst` at a time: the
 * sends of a burst are issued in order in one turn (one group commit), bursts one after the
 * other. Resolves with the ids in send order.
 */
async function sendNumbered(a: MeshNode, to: string, from: number, n: number, burst = 50): Promise<string[]> {
  const ids: string[] = []
  for (let i = from; i < from + n; i += burst) {
    const batch = Array.from({ length: Math.min(burst, from + n - i) }, async (_, k) => a.mail.send(to, `seq ${i + k}`))
    for (const r of await Promise.all(batch)) ids.push(r[0]?.id ?? '')
  }
  return ids
}

async function inboxIds(node: MeshNode): Promise<string[]> {
  return (await node.mail.inbox.list({ unreadOnly: false })).map((m: InboxMessage) => m.id)
}

/** Where two id lists first differ: a short failure message instead of a 10,000-line diff. */
function firstDifference(sent: string[], got: string[]): string {
  for (let i = 0; i < Math.max(sent.length, got.length); i++) {
    if (sent[i] !== got[i])
      return `first difference at #${i}: want seq ${i}, got seq ${sent.indexOf(got[i] ?? '')} (${got[i]}); lengths ${sent.length} / ${got.length}`
  }
  return 'same'
}

/** Every sent DM reached the recipient's model once and its inbox once, both in send order. */
function expectOnceInOrder(sent: string[], inbox: string[], got: Seen): void {
  expect(
    [...got.counts].filter(([, c]) => c !== 1),
    'ids handed to the model more than once'
  ).toEqual([])
  expect(new Set(inbox).size, 'distinct ids in the inbox').toBe(inbox.length)
  expect(firstDifference(sent, inbox), 'inbox (arrival order) vs send order').toBe('same')
  expect(firstDifference(sent, got.received), 'message:receive order vs send order').toBe('same')
}

/**
 * Flood budgets (SPEC.md §8.8) out of the way: 10,000 DMs from one sender as fast as the
 * relay takes them is what this test is about, and a recipient with default budgets would
 * (rightly) slow alice to 50 a second. The 500-DM tests below run with the defaults.
 */
const UNTHROTTLED: MeshNodeInit['limits'] = {
  dm: { rate: 1e6, burst: 1e6, byteRate: 1 << 30, byteBurst: 1 << 30 },
  senderUnread: 1e6,
  senderUnreadBytes: 1 << 30,
  totalUnread: 1e6,
  totalUnreadBytes: 1 << 30
}

describe('relay mailbox under faults', () => {
  it('10,000 DMs through the mailbox and live, in order and once each, while the relay is killed -9 at least 20 times', async () => {
    const TOTAL = 10_000
    const MIN_KILLS = 20
    /** bob is offline until this many were sent */
    const BOB_AT = 2_000
    /** alice waits here until everything so far is delivered, so her route to bob goes from the mailbox back to direct */
    const DRAIN_AT = 6_000
    /** alice sends while fewer than this many of hers are neither held nor delivered */
    const MAX_OUTSTANDING = 1_000
    // progress: bob's receives + alice's DMs handed over (held, or delivered without being
    // held): exactly 2 × TOTAL by the end, so MIN_KILLS + 1 thresholds are all crossed
    const STEP = Math.floor((2 * TOTAL) / (MIN_KILLS + 2))

    const w = await setup()
    const { a, seen, bSession, bId } = await acquainted(w)
    const t0 = Date.now()
    const times: Record<string, number> = {}
    const ticker = new EventTarget()
    let progress = 0
    /** per restart: how long the relay was down, and how long until traffic moved again */
    const restarts: Array<{ down: number; readyAt: number; stall?: number }> = []
    const tick = (): void => {
      progress++
      const last = restarts.at(-1)
      if (last != null && last.stall == null) last.stall = Date.now() - last.readyAt
      ticker.dispatchEvent(new Event('progress'))
    }
    a.addEventListener('message:status', e => {
      if (e.detail.status === 'held' || (e.detail.status === 'delivered' && !wasHeld(seen, e.detail.id))) tick()
    })
    let bob: { node: MeshNode; seen: Seen } | undefined
    let bobStarting: Promise<void> | undefined
    let finished = false
    const sent: string[] = []
    // bob's start and the relay's restarts take turns: a member that starts while its relay
    // is down is another test's subject, and today it fails to start at all
    let turn: Promise<unknown> = Promise.resolve()
    const exclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
      const run = turn.then(fn)
      turn = run.catch(() => {})
      return run
    }

    // the killer: kill -9 and restart the relay every STEP units of progress, until all is delivered
    const killer = (async () => {
      while (!finished) {
        const next = (w.relay.kills + 1) * STEP
        await until(
          ticker,
          ['progress', 'finished'],
          () => finished || progress >= next,
          60_000,
          `progress to reach ${next} (at ${progress})`
        )
        if (finished) break
        await exclusive(async () => {
          const t = Date.now()
          await w.relay.restart()
          restarts.push({ down: Date.now() - t, readyAt: Date.now() })
        })
      }
    })()
    const killerFailed = killer.then(
      () => undefined,
      (err: unknown) => err
    )

    try {
      while (sent.length < TOTAL) {
        await until(
          a,
          ['message:status'],
          () => sent.length - seen.status.size < MAX_OUTSTANDING,
          60_000,
          `alice's backlog to shrink (${sent.length} sent, ${seen.status.size} handed over)`
        )
        sent.push(...(await sendNumbered(a, bId, sent.length, Math.min(50, TOTAL - sent.length))))
        if (sent.length === DRAIN_AT) {
          await until(
            a,
            ['message:status'],
            () => reached(seen, 'delivered') >= DRAIN_AT,
            90_000,
            `the first ${DRAIN_AT} to be delivered (${reached(seen, 'delivered')} are)`
          )
          times.drained = Date.now() - t0
        }
        if (bobStarting == null && sent.length >= BOB_AT) {
          times.bobStarts = Date.now() - t0
          bobStarting = exclusive(async () => member(w, 'bob', bSession, [], UNTHROTTLED)).then(m => {
            bob = m
            m.node.addEventListener('message:receive', tick)
          })
          bobStarting.catch(() => {}) // awaited below
        }
      }
      times.allSent = Date.now() - t0
      await bobStarting
      const b = bob
      if (b == null) throw new Error('bob did not start')
      await until(
        b.node,
        ['message:receive'],
        () => b.seen.received.length >= TOTAL,
        120_000,
        `bob to get ${TOTAL} (has ${b.seen.received.length})`
      )
      times.allReceived = Date.now() - t0
      await until(
        a,
        ['message:status'],
        () => reached(seen, 'delivered') >= TOTAL,
        60_000,
        `alice to see ${TOTAL} delivered (sees ${reached(seen, 'delivered')})`
      )
      times.allDelivered = Date.now() - t0
      finished = true
      ticker.dispatchEvent(new Event('finished'))
      const killerError = await killerFailed
      if (killerError != null) throw killerError

      const stalls = restarts.map(r => r.stall ?? 0)
      const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0)
      const held = reached(seen, 'held')
      console.log(
        `relay faults: ${TOTAL} DMs in ${times.allDelivered} ms with ${w.relay.kills} relay kill -9s; ${held} went through the mailbox, ${TOTAL - held} direct; bob dropped ${b.node.mail.dm.stats.duplicates} duplicates; ms since the first send: ${JSON.stringify(times)}; the relay was down ${Math.round(sum(restarts.map(r => r.down)) / restarts.length)} ms a restart on average, then no traffic for ${Math.round(sum(stalls) / stalls.length)} ms on average (max ${Math.max(...stalls)}, ${sum(stalls)} ms in all)`
      )

      expectOnceInOrder(sent, await inboxIds(b.node), b.seen)
      expect(b.seen.received.length).toBe(TOTAL)
      const notDelivered: string[] = []
      for (const id of sent) if ((await a.mail.status(id))?.status !== 'delivered') notDelivered.push(id)
      expect(notDelivered, 'ids whose final status is not delivered').toEqual([])
      expect(a.mail.outbox.size).toBe(0)
      expect(a.mail.outbox.heldCount).toBe(0)
      expect(w.relay.kills).toBeGreaterThanOrEqual(MIN_KILLS)
    } finally {
      finished = true
      ticker.dispatchEvent(new Event('finished'))
      await killerFailed
    }
  }, 240_000)

  it('a direct channel that fails while later DMs already go to the mailbox does not reorder them', async () => {
    // bob is online on this machine with a direct address, so alice's first DMs take the direct
    // channel. Its dial is held open by an injected fault (alice's dialer, in-process) and then
    // fails, so they go to the mailbox.
    const w = await setup()
    const { node: a } = await member(w, 'alice', randomUUID())
    const { node: b, seen: got } = await member(w, 'bob', randomUUID(), ['/ip4/127.0.0.1/tcp/0'])
    await bothSee(a, b)
    await until(
      a,
      ['peer:update', 'peer:join'],
      () => a.presence.get(b.peerId)?.addrs.some(x => !x.includes('/p2p-circuit')) === true,
      20_000,
      "alice to know bob's direct address"
    )
    const dials: Array<(err: Error) => void> = []
    const realConnect = a.dialer.connect.bind(a.dialer)
    a.dialer.connect = async () =>
      new Promise<void>((_, reject) => {
        dials.push(reject)
      })
    const failDials = (): void => {
      for (const reject of dials.splice(0)) reject(new Error('injected: the dial failed'))
    }
    try {
      // discovery may have connected the two meanwhile: that connection goes, so the channel dials
      await a.libp2p.hangUp(b.libp2p.peerId)
      const sent = await sendNumbered(a, b.peerId, 0, 50)
      // the channel dials once its first item is on disk
      for (const end = Date.now() + 10_000; dials.length === 0 && Date.now() < end; ) await new Promise(resolve => setTimeout(resolve, 20))
      expect(dials.length, 'the first DMs took the direct channel').toBe(1)
      // the next 50 are routed while that dial hangs; it fails before they are on disk
      const second = sendNumbered(a, b.peerId, 50, 50)
      failDials()
      sent.push(...(await second))
      // and these are routed after the failure, straight to the mailbox
      sent.push(...(await sendNumbered(a, b.peerId, 100, 50)))
      failDials()
      await until(
        b,
        ['message:receive'],
        () => got.received.length >= sent.length,
        30_000,
        `bob to get ${sent.length} (has ${got.received.length})`
      )
      expectOnceInOrder(sent, await inboxIds(b), got)
    } finally {
      failDials()
      a.dialer.connect = realConnect
    }
  }, 60_000)

  it('a member that starts while its relay is down gets its held mail once the relay is back', async () => {
    const w = await setup()
    const { a, seen, bSession, bId } = await acquainted(w)
    const sent = await sendNumbered(a, bId, 0, 20)
    await until(a, ['message:status'], () => sent.every(id => seen.status.get(id) === 'held'), 20_000, 'the DMs to be held')
    await w.relay.kill()
    const { node: b, seen: got } = await member(w, 'bob', bSession)
    await w.relay.start()
    await until(
      b,
      ['message:receive'],
      () => got.received.length >= sent.length,
      30_000,
      `bob to get ${sent.length} (has ${got.received.length})`
    )
    expectOnceInOrder(sent, await inboxIds(b), got)
    await until(a, ['message:status'], () => sent.every(id => seen.status.get(id) === 'delivered'), 30_000, 'the delivery receipts')
  }, 60_000)

  it('after kill -9 and restart of the relay, a member is reachable over its circuit again and DMs go live, not to the mailbox', async () => {
    const w = await setup()
    const { node: a, seen } = await member(w, 'alice', randomUUID())
    const { node: b, seen: got } = await member(w, 'bob', randomUUID())
    const circuit = (n: MeshNode): boolean => n.libp2p.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))
    // the reservation is made once the relay connects, not inside start()
    // (an address that comes back unchanged after a restart emits no self:peer:update, but its listener does)
    const listening = ['self:peer:update', 'transport:listening']
    await until(b.libp2p, listening, () => circuit(b), 20_000, 'bob to listen through the relay')
    await w.relay.restart()
    await until(b.libp2p, listening, () => circuit(b), 20_000, 'bob to get a circuit address through the restarted relay')
    await until(
      a,
      ['peer:join', 'peer:update'],
      () => a.presence.get(b.peerId)?.online === true && (a.presence.get(b.peerId)?.addrs ?? []).some(x => x.includes('/p2p-circuit')),
      20_000,
      'alice to see bob online at his new circuit address'
    )
    // reachable over the circuit again: alice connects through it, and her DMs take that connection
    await a.dialer.connect(b.peerId)
    expect(a.libp2p.getConnections(b.libp2p.peerId).some(c => c.remoteAddr.toString().includes('/p2p-circuit'))).toBe(true)
    const sent = await sendNumbered(a, b.peerId, 0, 20)
    await until(a, ['message:status'], () => sent.every(id => seen.status.get(id) === 'delivered'), 30_000, 'the DMs to be delivered')
    expect(
      sent.filter(id => wasHeld(seen, id)),
      'DMs that went through the mailbox'
    ).toEqual([])
    expectOnceInOrder(sent, await inboxIds(b), got)
  }, 60_000)

  it('a deposit acknowledged as held survives kill -9 of the relay right after the ack', async () => {
    const w = await setup()
    const { a, seen, bSession, bId } = await acquainted(w)
    let killed: Promise<void> | undefined
    // killed from inside the event handler: nothing else runs between the ack and the kill
    a.addEventListener('message:status', e => {
      if (e.detail.status === 'held' && killed == null) killed = w.relay.kill()
    })
    const sent = await sendNumbered(a, bId, 0, 1)
    await until(a, ['message:status'], () => killed != null, 20_000, 'the deposit to be held')
    await killed
    await w.relay.start()
    const { node: b, seen: got } = await member(w, 'bob', bSession)
    await until(b, ['message:receive'], () => got.received.length >= 1, 30_000, 'bob to get the held message')
    expectOnceInOrder(sent, await inboxIds(b), got)
    await until(a, ['message:status'], () => seen.status.get(sent[0] ?? '') === 'delivered', 30_000, 'the delivery receipt')
  }, 60_000)

  it('recipient offline for the whole exchange: 500 DMs held, the sender leaves, the recipient gets each once in order, the sender returns to receipts', async () => {
    const w = await setup()
    const { a, seen, bSession, bId } = await acquainted(w)
    const aSession = a.init.session
    const sent = await sendNumbered(a, bId, 0, 500)
    await until(a, ['message:status'], () => sent.every(id => seen.status.get(id) === 'held'), 30_000, 'all 500 to be held')
    for (const id of sent) expect((await a.mail.status(id))?.status).toBe('held')
    await stop(w, a)
    const { node: b, seen: got } = await member(w, 'bob', bSession)
    await until(b, ['message:receive'], () => got.received.length >= sent.length, 30_000, `bob to get all 500 (has ${got.received.length})`)
    expectOnceInOrder(sent, await inboxIds(b), got)
    const { node: a2, seen: seen2 } = await member(w, 'alice', aSession)
    await until(
      a2,
      ['message:status'],
      () => reached(seen2, 'delivered') >= sent.length,
      30_000,
      `alice to get 500 delivery receipts (has ${reached(seen2, 'delivered')})`
    )
    for (const id of sent) expect((await a2.mail.status(id))?.status).toBe('delivered')
    expect(a2.mail.outbox.heldCount).toBe(0)
    expect(a2.mail.outbox.size).toBe(0)
    expect(got.received.length, 'nothing handed to bob again while alice came back').toBe(sent.length)
  }, 60_000)

  it('sender offline after handing over: it never returns, the relay crashes meanwhile, the recipient still gets everything once, in order', async () => {
    const w = await setup()
    const { a, seen, bSession, bId } = await acquainted(w)
    const sent = await sendNumbered(a, bId, 0, 300)
    await until(a, ['message:status'], () => sent.every(id => seen.status.get(id) === 'held'), 30_000, 'all 300 to be held')
    await stop(w, a)
    await rm(paths.data(w.home, MESH, a.init.session), { recursive: true, force: true })
    await w.relay.restart()
    const { node: b, seen: got } = await member(w, 'bob', bSession)
    await until(b, ['message:receive'], () => got.received.length >= sent.length, 30_000, `bob to get all 300 (has ${got.received.length})`)
    expectOnceInOrder(sent, await inboxIds(b), got)
  }, 60_000)
})
