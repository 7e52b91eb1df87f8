// A benchmark agent: one child process hosting one or more mesh nodes, driven by its parent
// over IPC (spawnAgent in agents.mjs). Requests are { rid, cmd, args } and get one reply
// { rid, ok, result | error }; unsolicited events are { ev, ... }. Every timestamp that
// crosses processes is performance.timeOrigin + performance.now() (ms, comparable between
// processes on one machine). Never writes to stdout; progress and errors go to stderr.
import { randomBytes, randomUUID } from 'node:crypto'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { importFrom } from './resolve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

// the node package under test; CLAUDEMESH_BENCH_NODE_DIST swaps in another build of its dist/
const dist = process.env.CLAUDEMESH_BENCH_NODE_DIST ?? join(root, 'packages/node/dist')
await import(pathToFileURL(join(dist, 'polyfill.js')).href)
const { createMesh, createMeshNode } = await import(pathToFileURL(join(dist, 'index.js')).href)
const { lpStream } = await importFrom(dirname(dist), '@libp2p/utils')

const ECHO = '/bench/echo/1.0.0'
const label = process.env.BENCH_AGENT_LABEL ?? `agent-${process.pid}`
const now = () => performance.timeOrigin + performance.now()
const log = (msg) => { console.error(`[${label}] ${msg}`) }
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

/** @type {Array<{ node: any, recv: Map<string, number>, dups: number, delivered: number, notify: boolean }>} */
const nodes = []
let uncaught = 0

process.on('uncaughtException', err => {
  // libp2p throws some errors from event listeners; count them, report them, keep going
  uncaught++
  log(`uncaught: ${err?.stack?.split('\n').slice(0, 3).join(' | ') ?? err}`)
})
process.on('unhandledRejection', err => {
  uncaught++
  log(`unhandled rejection: ${err?.stack?.split('\n').slice(0, 3).join(' | ') ?? err}`)
})
// the parent is gone: nothing will ever stop us
process.on('disconnect', () => { process.exit(3) })

const newCounters = () => ({ connOpened: 0, connClosed: 0, peerUpdates: 0, presenceGossip: 0, otherGossip: 0 })

/**
 * Time every group-commit flush (the synced LevelDB batch behind each accept and each ack)
 * of a node by wrapping its GroupCommit instance's flush; the package is not modified.
 */
function traceCommit (rec) {
  const commit = rec.node.messaging?.inbox?.commit
  if (commit == null || typeof commit.flush !== 'function') return
  const flush = commit.flush
  rec.flushMs = []
  rec.flushOps = []
  commit.flush = async function () {
    const ops = this.queue.length
    const t = performance.now()
    try {
      return await flush.call(this)
    } finally {
      if (rec.flushMs.length < 500_000) {
        rec.flushMs.push(performance.now() - t)
        rec.flushOps.push(ops)
      }
    }
  }
}

const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()

function recorder (node) {
  const rec = { node, recv: new Map(), dups: 0, delivered: 0, notify: false, flushMs: [], flushOps: [], counters: newCounters() }
  traceCommit(rec)
  // churn counters, reset by resetRecv: connections, presence updates, gossipsub deliveries
  node.libp2p.addEventListener('connection:open', () => { rec.counters.connOpened++ })
  node.libp2p.addEventListener('connection:close', () => { rec.counters.connClosed++ })
  node.addEventListener('peer:update', () => { rec.counters.peerUpdates++ })
  node.libp2p.services.pubsub.addEventListener('message', (e) => {
    if (String(e.detail?.topic ?? '').includes('/presence/')) rec.counters.presenceGossip++
    else rec.counters.otherGossip++
  })
  node.addEventListener('message:receive', (e) => {
    const t = now()
    const id = e.detail.id
    if (rec.recv.has(id)) {
      rec.dups++
      return
    }
    rec.recv.set(id, t)
    if (rec.notify) process.send({ ev: 'recv', node: node.peerId, id, t })
  })
  node.addEventListener('message:status', (e) => {
    if (e.detail.status === 'delivered') rec.delivered++
  })
  return rec
}

function withTimeout (p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms) })
  ])
}

/** Resolve when `pred()` holds, re-checked on each event of `types` on every target, or every `pollMs`. */
function until (targets, types, pred, timeoutMs, what, pollMs = 0) {
  if (pred()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const check = () => { if (pred()) finish() }
    const poll = pollMs > 0 ? setInterval(check, pollMs) : undefined
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)) }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      clearInterval(poll)
      for (const t of targets) for (const type of types) t.removeEventListener(type, check)
    }
    const finish = () => { cleanup(); resolve() }
    for (const t of targets) for (const type of types) t.addEventListener(type, check)
  })
}

/** Per-node waiters for the 'delivered' status of one message id. */
function deliveredWaiter (node) {
  const waiters = new Map()
  const early = new Set()
  const on = (e) => {
    if (e.detail.status !== 'delivered') return
    const w = waiters.get(e.detail.id)
    if (w != null) {
      waiters.delete(e.detail.id)
      w()
    } else {
      early.add(e.detail.id)
    }
  }
  node.addEventListener('message:status', on)
  return {
    wait (id, ms) {
      if (early.delete(id)) return Promise.resolve()
      return withTimeout(new Promise(resolve => { waiters.set(id, resolve) }), ms, `ack of ${id}`).finally(() => waiters.delete(id))
    },
    close () { node.removeEventListener('message:status', on) }
  }
}

const handlers = {
  async createMesh ({ home, mesh }) {
    await createMesh(home, mesh)
    return true
  },

  /** Create and start `names.length` nodes in this process; returns their peer ids. */
  async start ({ home, mesh, names }) {
    const fresh = []
    for (const name of names) {
      const node = await createMeshNode({ home, mesh, session: randomUUID(), name, cwd: home })
      fresh.push(node)
    }
    const t0 = performance.now()
    await Promise.all(fresh.map(n => n.start()))
    for (const n of fresh) nodes.push(recorder(n))
    log(`${fresh.length} node(s) started in ${(performance.now() - t0).toFixed(0)} ms`)
    return fresh.map(n => n.peerId)
  },

  /** Every local node lists every id in `ids` (but itself) online. */
  async waitSee ({ ids, timeoutMs = 20_000 }) {
    const all = nodes.map(r => r.node)
    const pred = () => all.every(n => ids.every(id => id === n.peerId || n.presence.get(id)?.online === true))
    await until(all, ['peer:join', 'peer:update'], pred, timeoutMs, 'every node to see every id online')
    return true
  },

  async resetRecv ({ notify = false } = {}) {
    for (const r of nodes) {
      r.recv = new Map()
      r.dups = 0
      r.delivered = 0
      r.notify = notify
      r.flushMs = []
      r.flushOps = []
      r.counters = newCounters()
      r.presence0 = { ...r.node.presence.stats }
    }
    loopDelay.reset()
    return true
  },

  /** What every local node received since the last reset: ids and receive times. */
  async recvDump () {
    return nodes.map(r => ({ peer: r.node.peerId, ids: [...r.recv.keys()], times: [...r.recv.values()], dups: r.dups, delivered: r.delivered }))
  },

  async counts () {
    let recv = 0
    let dups = 0
    let delivered = 0
    for (const r of nodes) {
      recv += r.recv.size
      dups += r.dups
      delivered += r.delivered
    }
    return { recv, dups, delivered }
  },

  /** How many of `ids` are NOT in node `node`'s inbox (in-memory id index of the durable inbox). */
  async inboxMissing ({ node = 0, ids }) {
    const inbox = nodes[node].node.mail.inbox
    let missing = 0
    for (const id of ids) if (!await inbox.has(id)) missing++
    return missing
  },

  async stats () {
    return nodes.map(r => {
      const m = r.node.messaging
      const commit = m?.inbox?.commit?.stats
      return {
        peer: r.node.peerId,
        dm: m != null ? { ...m.dm.stats } : null,
        groups: m != null ? { ...m.groups.stats } : null,
        groupCommit: commit != null ? { ...commit, writesPerBatch: commit.batches > 0 ? Number((commit.writes / commit.batches).toFixed(2)) : null } : null,
        /** presence records accepted / stale / rejected since the last resetRecv */
        presence: Object.fromEntries(Object.entries(r.node.presence.stats).map(([k, v]) => [k, v - (r.presence0?.[k] ?? 0)])),
        counters: { ...r.counters },
        connections: r.node.libp2p.getConnections().length,
        /** since the last resetRecv: each flush's duration (ms) and how many writes it carried */
        flushMs: r.flushMs,
        flushWrites: r.flushOps
      }
    }).concat([{
      uncaught,
      cpuUsageMs: (({ user, system }) => ({ user: user / 1000, system: system / 1000 }))(process.cpuUsage()),
      /** event-loop delay since the last resetRecv, ms */
      loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
    }])
  },

  // ---- the floor: a raw libp2p echo over one persistent stream ----

  async echoServe ({ node = 0 } = {}) {
    await nodes[node].node.libp2p.handle(ECHO, (stream) => {
      const lp = lpStream(stream)
      void (async () => {
        try {
          while (true) await lp.write((await lp.read()).subarray())
        } catch {
          stream.abort?.(new Error('echo done'))
        }
      })()
    }, { maxInboundStreams: 8 })
    return true
  },

  async echoRtt ({ node = 0, peer, n = 2000, warmup = 200, size = 200 }) {
    const self = nodes[node].node
    await self.dialer.connect(peer)
    const conn = self.libp2p.getConnections().find(c => c.remotePeer.toString() === peer && c.status === 'open')
    if (conn == null) throw new Error(`no open connection to ${peer}`)
    const stream = await conn.newStream(ECHO, { signal: AbortSignal.timeout(10_000) })
    const lp = lpStream(stream)
    const payload = new Uint8Array(randomBytes(size))
    const rtts = []
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now()
      await lp.write(payload)
      const back = await lp.read({ signal: AbortSignal.timeout(5_000) })
      const d = performance.now() - t
      if (back.byteLength !== size) throw new Error(`echo returned ${back.byteLength} bytes, not ${size}`)
      if (i >= warmup) rtts.push(d)
    }
    await stream.close().catch(() => {})
    return rtts
  },

  // ---- DMs ----

  /**
   * One DM at a time: send, note when it is accepted (the promise resolved), wait for its
   * 'delivered' ack, then the next one. Returns [id, tSendCall, tAccepted, tAcked] per message.
   */
  async latency ({ node = 0, to, n = 2000, warmup = 200, bodySize = 160, ackTimeoutMs = 10_000 }) {
    const self = nodes[node].node
    const acks = deliveredWaiter(self)
    const pad = 'x'.repeat(bodySize)
    const out = []
    try {
      for (let i = 0; i < warmup + n; i++) {
        const t0 = now()
        const [r] = await self.mail.send(to, `${i} ${pad}`, { priority: 'next' })
        const t1 = now()
        await acks.wait(r.id, ackTimeoutMs)
        const t2 = now()
        if (i >= warmup) out.push([r.id, t0, t1, t2])
      }
    } finally {
      acks.close()
    }
    return out
  },

  /**
   * Sustained throughput: keep at most `window` DMs accepted-but-unacked (plus sends not yet
   * accepted) in flight for `seconds`, then stop sending and wait up to `drainMs` for the
   * remaining acks. Counts acks and acceptances per second of the sending window.
   */
  async throughput ({ node = 0, to, seconds = 30, window = 5000, maxOutstanding = 1024, bodySize = 64, drainMs = 30_000 }) {
    const self = nodes[node].node
    const pad = 'y'.repeat(bodySize)
    const accepted = []
    const unacked = new Set()
    const early = new Set()
    const ackPerSec = new Array(seconds).fill(0)
    const acceptPerSec = new Array(seconds).fill(0)
    let outstanding = 0
    let sending = true
    let acks = 0
    let failures = 0
    let lastError
    let seq = 0
    let onIdle = () => {}
    const t0 = now()
    const bucket = () => Math.floor((now() - t0) / 1000)
    const countAck = () => {
      acks++
      const b = bucket()
      if (b < seconds) ackPerSec[b]++
    }
    const idle = () => outstanding === 0 && unacked.size === 0
    const top = () => {
      while (sending && outstanding < maxOutstanding && outstanding + unacked.size < window) {
        outstanding++
        seq++
        self.mail.send(to, `${seq} ${pad}`, { priority: 'next' }).then(([r]) => {
          outstanding--
          const b = bucket()
          if (b < seconds) acceptPerSec[b]++
          accepted.push(r.id)
          if (early.delete(r.id)) countAck()
          else unacked.add(r.id)
          top()
          if (!sending && idle()) onIdle()
        }, (err) => {
          outstanding--
          failures++
          lastError = err.message
          if (!sending && idle()) onIdle()
        })
      }
    }
    const onStatus = (e) => {
      if (e.detail.status !== 'delivered') return
      if (unacked.delete(e.detail.id)) {
        countAck()
        top()
        if (!sending && idle()) onIdle()
      } else {
        early.add(e.detail.id)
      }
    }
    self.addEventListener('message:status', onStatus)
    try {
      top()
      await sleep(seconds * 1000)
      sending = false
      const tStop = now()
      const acksAtStop = acks
      const drained = await new Promise(resolve => {
        if (idle()) return resolve(true)
        const timer = setTimeout(() => resolve(false), drainMs)
        onIdle = () => { clearTimeout(timer); resolve(true) }
      })
      const tEnd = now()
      return {
        accepted,
        ackPerSec,
        acceptPerSec,
        acksInWindow: acksAtStop,
        acksTotal: acks,
        windowMs: tStop - t0,
        drainMs: tEnd - tStop,
        drained,
        unackedLeft: unacked.size,
        outstandingLeft: outstanding,
        failures,
        lastError
      }
    } finally {
      sending = false
      self.removeEventListener('message:status', onStatus)
    }
  },

  /** One send from a local node; returns the message id and the call/accept times. */
  async send ({ node = 0, to, body }) {
    const self = nodes[node].node
    const t0 = now()
    const rs = await self.mail.send(to, body, { priority: 'next' })
    return { id: rs[0].id, recipients: rs[0].status, t0, t1: now() }
  },

  /**
   * Every local node sends `perNode` DMs to random ids of `targets` (not itself), at most
   * `concurrency` sends not yet accepted per node. Returns [id, to, tSendCall, tAccepted] per DM.
   */
  async blast ({ perNode = 500, targets, concurrency = 8, bodySize = 120 }) {
    const pad = 'z'.repeat(bodySize)
    return Promise.all(nodes.map(({ node }) => new Promise(resolve => {
      const others = targets.filter(t => t !== node.peerId)
      const records = []
      let issued = 0
      let active = 0
      let errors = 0
      let lastError
      const next = () => {
        while (active < concurrency && issued < perNode) {
          const i = issued++
          active++
          const to = others[Math.floor(Math.random() * others.length)]
          const t0 = now()
          node.mail.send(to, `${i} ${pad}`, { priority: 'next' }).then(([r]) => {
            records.push([r.id, to, t0, now()])
          }, (err) => {
            errors++
            lastError = err.message
          }).finally(() => {
            active--
            if (issued >= perNode && active === 0) resolve({ peer: node.peerId, records, errors, lastError })
            else next()
          })
        }
      }
      next()
    })))
  },

  // ---- groups ----

  /**
   * Until every local node has an @all gossipsub mesh: at least one subscriber, and at least
   * min(subscribers, dLo) mesh peers. Returns per-node connections/subscribers/mesh peers.
   */
  async groupMeshReady ({ timeoutMs = 20_000, dLo = 4 } = {}) {
    const view = () => nodes.map(({ node }) => {
      const topic = node.mail.groups.topicOf('*')
      const ps = node.libp2p.services.pubsub
      return { connections: node.libp2p.getConnections().length, subscribers: ps.getSubscribers(topic).length, mesh: ps.getMeshPeers(topic).length }
    })
    const ok = () => view().every(v => v.subscribers >= 1 && v.mesh >= Math.min(v.subscribers, dLo))
    await until([], [], ok, timeoutMs, '@all gossipsub mesh on every node', 25)
    return view()
  },

  async stop () {
    const t = performance.now()
    const stopped = await withTimeout(Promise.allSettled(nodes.map(r => r.node.stop())), 15_000, 'stopping nodes').then(() => true, () => false)
    return { stopped, ms: performance.now() - t }
  }
}

process.on('message', async (msg) => {
  if (msg == null || msg.rid == null) return
  const h = handlers[msg.cmd]
  try {
    if (h == null) throw new Error(`unknown command ${msg.cmd}`)
    const result = await h(msg.args ?? {})
    process.send({ rid: msg.rid, ok: true, result })
    if (msg.cmd === 'stop') setTimeout(() => process.exit(0), 50) // let the reply leave; --cpu-prof writes on exit
  } catch (err) {
    process.send({ rid: msg.rid, ok: false, error: err?.stack ?? String(err) })
  }
})

process.send({ ev: 'ready', pid: process.pid })
