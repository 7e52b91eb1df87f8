// A benchmark agent: one child process hosting one or more mesh nodes, driven by its parent
// over IPC (spawnAgent in agents.mjs). Requests are { rid, cmd, args } and get one reply
// { rid, ok, result | error }; unsolicited events are { ev, ... }. Every timestamp that
// crosses processes is performance.timeOrigin + performance.now() (ms, comparable between
// processes on one machine). Never writes to stdout; progress and errors go to stderr.
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { seeded } from './harness.mjs'
import { importFrom } from './resolve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

// the node package under test; CLAUDEMESH_BENCH_NODE_DIST swaps in another build of its dist/
const dist = process.env.CLAUDEMESH_BENCH_NODE_DIST ?? join(root, 'packages/node/dist')
await import(pathToFileURL(join(dist, 'polyfill.js')).href)
const { createMesh, createMeshNode } = await import(pathToFileURL(join(dist, 'index.js')).href)
const { lpStream } = await importFrom(dirname(dist), '@libp2p/utils')
// an agent hosting nodes runs the heap policy the CLI's node roles run once started
// (packages/node/src/heap.ts: the old generation's growth bounded); not the young generation's
// hold, which is for one node's start, not twenty's. A build without heap.js (an A/B against an
// older dist) keeps V8's defaults. BENCH_HEAP_GROWING_PERCENT=<n> sets another bound to compare
const heap = await import(pathToFileURL(join(dist, 'heap.js')).href).catch(() => null)
const nodesStarted = () => {
  const percent = process.env.BENCH_HEAP_GROWING_PERCENT
  if (percent != null) setFlagsFromString(`--heap-growing-percent=${Number(percent)}`)
  else heap?.boundOldGeneration()
}

const ECHO = '/bench/echo/1.0.0'
const RAW = '/bench/raw/1.0.0'
const RAW_MAX = 8 * 1024 * 1024
const label = process.env.BENCH_AGENT_LABEL ?? `agent-${process.pid}`
const now = () => performance.timeOrigin + performance.now()
const log = msg => {
  console.error(`[${label}] ${msg}`)
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

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
process.on('disconnect', () => {
  process.exit(3)
})

const newCounters = () => ({ connOpened: 0, connClosed: 0, peerUpdates: 0, presenceGossip: 0, otherGossip: 0 })

/**
 * Time every group-commit flush (the synced LevelDB batch behind each accept and each ack)
 * of a node by wrapping its GroupCommit instance's flush; the package is not modified.
 */
function traceCommit(rec) {
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

// What the GC did since the last `gcWindow` call: the live heap under load (heapUsed right after
// each major GC, what survived it, the largest), deterministic where peak RSS is not (V8 sizes
// the old generation from it, so RSS peaks follow it, but by how much depends on when GCs
// fall); and the main thread's GC pauses by kind (scavenges; mark-compacts with their
// incremental steps and weak callbacks), what a heap policy trades against memory.
const newWindow = () => ({ liveHeap: 0, minorMs: 0, majorMs: 0, majors: 0 })
let gc = newWindow()
{
  const { PerformanceObserver } = await import('node:perf_hooks')
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      const kind = e.detail?.kind ?? e.kind
      if (kind === 4) {
        gc.liveHeap = Math.max(gc.liveHeap, process.memoryUsage().heapUsed)
        gc.majors++
      }
      if (kind === 1) gc.minorMs += e.duration
      else gc.majorMs += e.duration
    }
  }).observe({ entryTypes: ['gc'] })
}

// BENCH_MEM_TRACE=1 (diagnostic): log process.memoryUsage() at each new RSS peak (+16 MB) to
// stderr; BENCH_HEAPSNAP_MB=<n>: write one heap snapshot (to BENCH_HEAPSNAP_DIR, default the cwd) once heapUsed passes n MB
if (process.env.BENCH_MEM_TRACE === '1' || process.env.BENCH_HEAPSNAP_MB != null) {
  const v8 = await import('node:v8')
  let peak = 0
  let snapped = false
  const mb = x => (x / 1048576).toFixed(0)
  setInterval(() => {
    const m = process.memoryUsage()
    if (m.rss > peak + 16 * 1048576) {
      peak = m.rss
      // LevelDB's own estimate of its memory (memtables, block cache), summed over this process's nodes
      let ldb = 0
      for (const r of nodes) ldb += Number(r.node.store?.getProperty?.('leveldb.approximate-memory-usage') ?? 0)
      log(
        `mem rss ${mb(m.rss)} heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)} leveldb ${mb(ldb)} MB`
      )
    }
    const at = Number(process.env.BENCH_HEAPSNAP_MB ?? Infinity)
    if (!snapped && m.heapUsed > at * 1048576 && (process.env.BENCH_HEAPSNAP_LABEL ?? label) === label) {
      snapped = true
      const file = v8.writeHeapSnapshot(join(process.env.BENCH_HEAPSNAP_DIR ?? '.', `${label}.heapsnapshot`))
      log(`heap snapshot ${file}`)
    }
  }, 200).unref()
  const { PerformanceObserver } = await import('node:perf_hooks')
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      if ((e.detail?.kind ?? e.kind) !== 4 || e.duration < 0) continue // major (mark-compact) only
      const m = process.memoryUsage()
      log(
        `gc major ${e.duration.toFixed(0)} ms: heapUsed ${mb(m.heapUsed)} heapTotal ${mb(m.heapTotal)} rss ${mb(m.rss)} external ${mb(m.external)} MB`
      )
    }
  }).observe({ entryTypes: ['gc'] })
}

// BENCH_HEAPPROF=<dir> (diagnostic): V8's sampling heap profiler from here on, counting objects
// a major GC collected too (what reached the old generation), written every 20 s to <dir>/<label>.heapprofile
if (process.env.BENCH_HEAPPROF != null) {
  const { Session } = await import('node:inspector/promises')
  const { writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true })
  setInterval(async () => {
    const { profile } = await session.post('HeapProfiler.getSamplingProfile')
    writeFileSync(join(process.env.BENCH_HEAPPROF, `${label}.heapprofile`), JSON.stringify(profile))
  }, 20_000).unref()
}

const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()

function recorder(node) {
  const rec = {
    node,
    recv: new Map(),
    dups: 0,
    delivered: 0,
    ackAt: new Map(),
    closeWhy: new Map(),
    notify: false,
    flushMs: [],
    flushOps: [],
    counters: newCounters()
  }
  traceCommit(rec)
  // churn counters, reset by resetRecv: connections, presence updates, gossipsub deliveries
  // why connections close (a ping timeout under load, the connection manager, the remote…)
  const watchClose = conn => {
    conn.addEventListener?.('close', evt => {
      const why = `${evt.local ? 'local' : 'remote'} ${evt.error?.name ?? 'close'}: ${String(evt.error?.message ?? '').slice(0, 60)}`
      rec.closeWhy.set(why, (rec.closeWhy.get(why) ?? 0) + 1)
    })
  }
  for (const conn of node.libp2p.getConnections()) watchClose(conn)
  node.libp2p.addEventListener('connection:open', e => {
    rec.counters.connOpened++
    watchClose(e.detail)
  })
  node.libp2p.addEventListener('connection:close', () => {
    rec.counters.connClosed++
  })
  node.addEventListener('peer:update', () => {
    rec.counters.peerUpdates++
  })
  node.libp2p.services.pubsub.addEventListener('message', e => {
    if (String(e.detail?.topic ?? '').includes('/presence/')) rec.counters.presenceGossip++
    else rec.counters.otherGossip++
  })
  node.addEventListener('message:receive', e => {
    const t = now()
    const id = e.detail.id
    if (rec.recv.has(id)) {
      rec.dups++
      return
    }
    rec.recv.set(id, t)
    if (rec.notify) process.send({ ev: 'recv', node: node.peerId, id, t })
  })
  node.addEventListener('message:status', e => {
    if (e.detail.status !== 'delivered') return
    rec.delivered++
    if (!rec.ackAt.has(e.detail.id)) rec.ackAt.set(e.detail.id, now())
  })
  return rec
}

function withTimeout(p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
    })
  ])
}

/** Resolve when `pred()` holds, re-checked on each event of `types` on every target, or every `pollMs`. */
function until(targets, types, pred, timeoutMs, what, pollMs = 0) {
  if (pred()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pred()) finish()
    }
    const poll = pollMs > 0 ? setInterval(check, pollMs) : undefined
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      clearInterval(poll)
      for (const t of targets) for (const type of types) t.removeEventListener(type, check)
    }
    const finish = () => {
      cleanup()
      resolve()
    }
    for (const t of targets) for (const type of types) t.addEventListener(type, check)
  })
}

/** Per-node waiters for the 'delivered' status of one message id. */
function deliveredWaiter(node) {
  const waiters = new Map()
  const early = new Set()
  const on = e => {
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
    wait(id, ms) {
      if (early.delete(id)) return Promise.resolve()
      return withTimeout(
        new Promise(resolve => {
          waiters.set(id, resolve)
        }),
        ms,
        `ack of ${id}`
      ).finally(() => waiters.delete(id))
    },
    close() {
      node.removeEventListener('message:status', on)
    }
  }
}

const handlers = {
  /** BENCH_SIGPROF: start or write this process's CPU profile; true when it now runs */
  profile: () => toggleProfile(),
  /** Since the last call: the largest live heap after a major GC (MB; 0: none ran), the GC pauses (ms) and the number of major GCs. */
  gcWindow() {
    const w = gc
    gc = newWindow()
    return {
      liveHeapMB: Math.round((w.liveHeap / 1048576) * 10) / 10,
      minorMs: Math.round(w.minorMs),
      majorMs: Math.round(w.majorMs),
      majors: w.majors
    }
  },

  async createMesh({ home, mesh }) {
    await createMesh(home, mesh)
    return true
  },

  /** Create and start `names.length` nodes in this process (flood-control `limits` if given); returns their peer ids. */
  async start({ home, mesh, names, limits }) {
    const fresh = []
    for (const name of names) {
      const node = await createMeshNode({ home, mesh, session: randomUUID(), name, cwd: home, ...(limits != null ? { limits } : {}) })
      fresh.push(node)
    }
    const t0 = performance.now()
    await Promise.all(fresh.map(n => n.start()))
    nodesStarted()
    for (const n of fresh) nodes.push(recorder(n))
    log(`${fresh.length} node(s) started in ${(performance.now() - t0).toFixed(0)} ms`)
    return fresh.map(n => n.peerId)
  },

  /** Every local node lists every id in `ids` (but itself) online. */
  async waitSee({ ids, timeoutMs = 20_000 }) {
    const all = nodes.map(r => r.node)
    const pred = () => all.every(n => ids.every(id => id === n.peerId || n.presence.get(id)?.online === true))
    await until(all, ['peer:join', 'peer:update'], pred, timeoutMs, 'every node to see every id online')
    return true
  },

  async resetRecv({ notify = false } = {}) {
    for (const r of nodes) {
      r.recv = new Map()
      r.dups = 0
      r.delivered = 0
      r.ackAt = new Map()
      r.closeWhy = new Map()
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
  async recvDump() {
    return nodes.map(r => ({
      peer: r.node.peerId,
      ids: [...r.recv.keys()],
      times: [...r.recv.values()],
      dups: r.dups,
      delivered: r.delivered
    }))
  },

  async counts() {
    let recv = 0
    let dups = 0
    let delivered = 0
    let acked = 0
    for (const r of nodes) {
      recv += r.recv.size
      dups += r.dups
      delivered += r.delivered
      acked += r.ackAt.size
    }
    /** delivered: 'delivered' statuses emitted; acked: distinct ids that reached it */
    return { recv, dups, delivered, acked }
  },

  /** How many of `ids` are NOT in node `node`'s inbox (in-memory id index of the durable inbox). */
  async inboxMissing({ node = 0, ids }) {
    const inbox = nodes[node].node.mail.inbox
    let missing = 0
    for (const id of ids) if (!(await inbox.has(id))) missing++
    return missing
  },

  async stats() {
    return nodes
      .map(r => {
        const m = r.node.messaging
        const commit = m?.inbox?.commit?.stats
        return {
          peer: r.node.peerId,
          dm: m != null ? { ...m.dm.stats } : null,
          groups: m != null ? { ...m.groups.stats } : null,
          groupCommit:
            commit != null
              ? { ...commit, writesPerBatch: commit.batches > 0 ? Number((commit.writes / commit.batches).toFixed(2)) : null }
              : null,
          /** presence records accepted / stale / rejected since the last resetRecv */
          presence: Object.fromEntries(Object.entries(r.node.presence.stats).map(([k, v]) => [k, v - (r.presence0?.[k] ?? 0)])),
          counters: { ...r.counters },
          /** since the last resetRecv: closed connections by side and error */
          closeWhy: Object.fromEntries(r.closeWhy),
          connections: r.node.libp2p.getConnections().length,
          /** since the last resetRecv: each flush's duration (ms) and how many writes it carried */
          flushMs: r.flushMs,
          flushWrites: r.flushOps
        }
      })
      .concat([
        {
          uncaught,
          cpuUsageMs: (({ user, system }) => ({ user: user / 1000, system: system / 1000 }))(process.cpuUsage()),
          /** event-loop delay since the last resetRecv, ms */
          loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
        }
      ])
  },

  // ---- the floor: a raw libp2p echo over one persistent stream ----

  async echoServe({ node = 0 } = {}) {
    await nodes[node].node.libp2p.handle(
      ECHO,
      stream => {
        const lp = lpStream(stream)
        void (async () => {
          try {
            while (true) await lp.write((await lp.read()).subarray())
          } catch {
            stream.abort?.(new Error('echo done'))
          }
        })()
      },
      { maxInboundStreams: 8 }
    )
    return true
  },

  async echoRtt({ node = 0, peer, n = 2000, warmup = 200, size = 200 }) {
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

  // ---- files against the floor: a raw libp2p stream of the same bytes (bench/files.mjs) ----

  /** Serve `/bench/raw/1.0.0`: read `{bytes, chunk}` (JSON), write that many bytes in `chunk`-sized frames, close. */
  async rawServe({ node = 0 } = {}) {
    await nodes[node].node.libp2p.handle(
      RAW,
      stream => {
        const lp = lpStream(stream, { maxDataLength: RAW_MAX })
        void (async () => {
          try {
            const { bytes, chunk } = JSON.parse(Buffer.from((await lp.read()).subarray()).toString())
            const buf = randomBytes(chunk)
            for (let sent = 0; sent < bytes; sent += chunk) await lp.write(buf.subarray(0, Math.min(chunk, bytes - sent)))
            await stream.close()
          } catch (err) {
            stream.abort?.(err)
          }
        })()
      },
      { maxInboundStreams: 8, runOnLimitedConnection: true }
    )
    return true
  },

  /** Read `bytes` from `peer`'s raw server over a new stream; returns the ms from the request to the last byte. */
  async rawFetch({ node = 0, peer, bytes, chunk = 1024 * 1024 }) {
    const self = nodes[node].node
    await self.dialer.connect(peer)
    const conn = self.libp2p.getConnections().find(c => c.remotePeer.toString() === peer && c.status === 'open')
    if (conn == null) throw new Error(`no open connection to ${peer}`)
    const t = performance.now()
    const stream = await conn.newStream(RAW, { signal: AbortSignal.timeout(10_000), runOnLimitedConnection: true })
    const lp = lpStream(stream, { maxDataLength: RAW_MAX })
    await lp.write(Buffer.from(JSON.stringify({ bytes, chunk })))
    let got = 0
    while (got < bytes) got += (await lp.read({ signal: AbortSignal.timeout(30_000) })).byteLength
    const ms = performance.now() - t
    await stream.close().catch(() => {})
    return { ms, bytes: got }
  },

  /** Share the file at `path` with `to`; returns its id and the ms sealing and announcing took. */
  async fileShare({ node = 0, path, to }) {
    const t = performance.now()
    const r = await nodes[node].node.files.share(path, to)
    return { id: r.file.id, ms: performance.now() - t }
  },

  /** Fetch file `id` to `dest` (every chunk fetched, checked and stored, then the file opened, written and synced): the ms it took. */
  async fileGet({ node = 0, id, dest, from }) {
    const t = performance.now()
    const r = await nodes[node].node.files.get(id, dest, { from })
    return { ms: performance.now() - t, bytes: r.file.size, fetchedBytes: r.fetchedBytes, path: r.path }
  },

  // ---- DMs ----

  /**
   * One DM at a time: send, note when it is accepted (the promise resolved), wait for its
   * 'delivered' ack, then the next one. Returns [id, tSendCall, tAccepted, tAcked] per message.
   */
  async latency({ node = 0, to, n = 2000, warmup = 200, bodySize = 160, ackTimeoutMs = 10_000 }) {
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
  async throughput({ node = 0, to, seconds = 30, window = 5000, maxOutstanding = 1024, bodySize = 64, drainMs = 30_000 }) {
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
        self.mail.send(to, `${seq} ${pad}`, { priority: 'next' }).then(
          ([r]) => {
            outstanding--
            const b = bucket()
            if (b < seconds) acceptPerSec[b]++
            accepted.push(r.id)
            if (early.delete(r.id)) countAck()
            else unacked.add(r.id)
            top()
            if (!sending && idle()) onIdle()
          },
          err => {
            outstanding--
            failures++
            lastError = err.message
            if (!sending && idle()) onIdle()
          }
        )
      }
    }
    const onStatus = e => {
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
        onIdle = () => {
          clearTimeout(timer)
          resolve(true)
        }
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
  async send({ node = 0, to, body }) {
    const self = nodes[node].node
    const t0 = now()
    const rs = await self.mail.send(to, body, { priority: 'next' })
    return { id: rs[0].id, recipients: rs[0].status, t0, t1: now() }
  },

  /**
   * Every local node sends `perNode` DMs to random ids of `targets` (not itself), at most
   * `concurrency` sends not yet accepted per node. Returns [id, to, tSendCall, tAccepted] per DM.
   */
  async blast({ perNode = 500, targets, concurrency = 8, bodySize = 120 }) {
    const pad = 'z'.repeat(bodySize)
    return Promise.all(
      nodes.map(
        ({ node }) =>
          new Promise(resolve => {
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
                node.mail
                  .send(to, `${i} ${pad}`, { priority: 'next' })
                  .then(
                    ([r]) => {
                      records.push([r.id, to, t0, now()])
                    },
                    err => {
                      errors++
                      lastError = err.message
                    }
                  )
                  .finally(() => {
                    active--
                    if (issued >= perNode && active === 0) resolve({ peer: node.peerId, records, errors, lastError })
                    else next()
                  })
              }
            }
            next()
          })
      )
    )
  },

  /**
   * bench/load.mjs: every local node (or, with `members`, every running member) calls send()
   * for all its `perNode` DMs in one burst (all calls issued in one turn, none awaited first),
   * each to a seeded-random other id of `targets`. Resolves once every call has settled; per
   * sender { peer, records: [[seq, id, to, tCall, tAccepted]], errors, lastError }.
   */
  async burst({ perNode, targets, seed = 1, bodySize = 120, members: useMembers = false }) {
    const senders = useMembers ? [...members.values()].filter(m => m.state === 'running').map(m => m.node) : nodes.map(r => r.node)
    const pad = 'b'.repeat(bodySize)
    return Promise.all(
      senders.map(async node => {
        const rand = seeded(seed * 7919 + [...node.peerId].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) | 0, 0))
        const others = targets.filter(t => t !== node.peerId)
        const records = []
        let errors = 0
        let lastError
        const calls = []
        for (let i = 0; i < perNode; i++) {
          const to = others[Math.floor(rand() * others.length)]
          const t0 = now()
          calls.push(
            node.mail.send(to, `${i} ${pad}`, { priority: 'next' }).then(
              ([r]) => {
                records.push([i, r.id, to, t0, now()])
              },
              err => {
                errors++
                lastError = err.message
              }
            )
          )
        }
        await Promise.all(calls)
        return { peer: node.peerId, records, errors, lastError }
      })
    )
  },

  /**
   * bench/load.mjs: per local node (or member, kept across its restarts): the ids it received
   * since `since` in arrival order with their times, duplicates, and the first 'delivered'
   * status time (since `since`) of its sends.
   */
  async loadDump({ members: useMembers = false, since = 0 } = {}) {
    const recs = useMembers
      ? [...members.values()].map(m => ({ peer: m.peerId, recv: m.recv, dups: m.dups, acks: m.delivered, node: m.node }))
      : nodes.map(r => ({ peer: r.node.peerId, recv: r.recv, dups: r.dups, acks: r.ackAt, node: r.node }))
    const after = map => [...map].filter(([, t]) => t >= since)
    return recs.map(r => ({
      peer: r.peer,
      recvIds: after(r.recv).map(([id]) => id),
      recvTimes: after(r.recv).map(([, t]) => t),
      /** cumulative (members keep theirs across restarts and rounds) */
      dups: r.dups,
      ackIds: after(r.acks).map(([id]) => id),
      ackTimes: after(r.acks).map(([, t]) => t),
      connections: r.node?.libp2p.getConnections().length ?? null,
      outboxPending: r.node?.messaging?.outbox.size ?? null,
      dm:
        r.node?.messaging != null
          ? {
              ...r.node.messaging.dm.stats,
              ...(r.node.messaging.dm.mailbox != null ? { mailbox: { ...r.node.messaging.dm.mailbox.stats } } : {})
            }
          : null
    }))
  },

  // ---- groups ----

  /**
   * Until every local node has an @all gossipsub mesh: at least one subscriber, and at least
   * min(subscribers, dLo) mesh peers. Returns per-node connections/subscribers/mesh peers.
   */
  async groupMeshReady({ timeoutMs = 20_000, dLo = 4 } = {}) {
    const view = () =>
      nodes.map(({ node }) => {
        const topic = node.mail.groups.topicOf('*')
        const ps = node.libp2p.services.pubsub
        return {
          connections: node.libp2p.getConnections().length,
          subscribers: ps.getSubscribers(topic).length,
          mesh: ps.getMeshPeers(topic).length
        }
      })
    const ok = () => view().every(v => v.subscribers >= 1 && v.mesh >= Math.min(v.subscribers, dLo))
    await until([], [], ok, timeoutMs, '@all gossipsub mesh on every node', 25)
    return view()
  },

  async stop() {
    const t = performance.now()
    const stopped = await withTimeout(Promise.allSettled(nodes.map(r => r.node.stop())), 15_000, 'stopping nodes').then(
      () => true,
      () => false
    )
    return { stopped, ms: performance.now() - t }
  }
}

// ---- relay benchmarks (bench/relay.mjs, scripts/relay-soak.mjs) ----
// A relay hosted alone in an agent process, and "members": nodes addressed by peer id that can
// be stopped and started again with the same session (same key, same store, so the same
// identity and inbox). What a member received, and every status its sends reached, is kept
// across its restarts. Members are separate from `nodes` above; the existing commands ignore them.

let relay = null
/** connections opened and closed at the relay since it started */
const relayConns = { opened: 0, closed: 0 }
const relayCloseWhy = new Map()
/** the relay's counters sampled every second (in this process, so no IPC jitter) */
let relaySamples = []
let relaySampler
/** peer id → member */
const members = new Map()

// BENCH_SIGPROF=<dir>: SIGUSR2 (or the `profile` command, which answers once the profiler
// runs, so that what the caller sends next is in the profile) starts a CPU profile of this
// process; the next toggle writes it to <dir>
let toggleProfile = async () => false
if (process.env.BENCH_SIGPROF != null) {
  const { Session } = await import('node:inspector')
  const { writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))))
  let on = false
  toggleProfile = async () => {
    if (!on) {
      on = true
      await post('Profiler.enable')
      await post('Profiler.start')
      log('profile started')
      return true
    }
    on = false
    const f = join(process.env.BENCH_SIGPROF, `${label}.${Date.now()}.cpuprofile`)
    try {
      writeFileSync(f, JSON.stringify((await post('Profiler.stop')).profile))
      log(`profile written: ${f}`)
    } catch (err) {
      log(`profile not written: ${err.message}`)
    }
    return false
  }
  process.on('SIGUSR2', () => void toggleProfile())
}

// BENCH_DIAG_MS: every so often, log each running member that has no open connection to its relay (why it is not redialling)
if (Number(process.env.BENCH_DIAG_MS ?? 0) > 0) {
  const lost = new Map()
  const { Dialer } = await import(pathToFileURL(join(dist, 'discovery/dialer.js')).href)
  const orig = Dialer.prototype.dialOnce
  Dialer.prototype.dialOnce = function (key, fn) {
    this.diagStarts ??= new Map()
    if (!this.inflight.has(key)) this.diagStarts.set(key, now())
    const t = now()
    return orig.call(this, key, async () => {
      try {
        await fn()
      } catch (err) {
        this.diagLastError = `${((now() - t) / 1000).toFixed(1)} s ${err.name}: ${String(err.message).slice(0, 160)}${err.errors != null ? ` [${err.errors.map(e => `${e.name}: ${String(e.message).slice(0, 80)}`).join('; ')}]` : ''}`
        throw err
      }
    })
  }
  setInterval(() => {
    if (members.size > 0 && relay == null)
      log(`DIAGLOOP p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} max ${(loopDelay.max / 1e6).toFixed(0)} ms`)
    for (const m of members.values()) {
      if (m.state !== 'running' || m.node == null) {
        lost.delete(m.peerId)
        continue
      }
      const n = m.node
      const rid = n.relays().map(r => r.split('/p2p/').pop())[0]
      const conns = n.libp2p.getConnections().filter(c => c.remotePeer.toString() === rid)
      const open = conns.some(c => c.status === 'open')
      if (open) {
        lost.delete(m.peerId)
        continue
      }
      if (!lost.has(m.peerId)) lost.set(m.peerId, now())
      const d = n.dialer
      const relayKey = [...(d?.inflight ?? [])].find(k => k.includes(rid))
      const since =
        relayKey != null && d.diagStarts?.has(relayKey) === true ? ((now() - d.diagStarts.get(relayKey)) / 1000).toFixed(0) : '-'
      const dq = n.libp2p.components?.connectionManager?.dialQueue
      log(
        `DIAG ${m.peerId.slice(-8)} no relay conn for ${((now() - lost.get(m.peerId)) / 1000).toFixed(0)} s: conns ${JSON.stringify(conns.map(c => c.status))} all ${n.libp2p.getConnections().length} inflight ${JSON.stringify([...(d?.inflight ?? [])].map(k => k.slice(-12)))} failures ${JSON.stringify([...(d?.failures ?? new Map())].map(([k, v]) => [k.slice(-8), v.n, Math.round(v.until - Date.now())]))} relayDialFor ${since} s dialQueue ${dq?.queue?.size ?? '?'}/${dq?.queue?.running ?? '?'} lastErr ${d?.diagLastError} mailbox ${n.messaging?.dm.mailbox?.hasSession(rid)} queued ${n.messaging?.dm.mailbox?.queued}`
      )
    }
  }, Number(process.env.BENCH_DIAG_MS)).unref()
}

/** bytes this process read and wrote through syscalls (sockets included), or null off Linux */
function ioBytes() {
  try {
    const io = readFileSync('/proc/self/io', 'utf8')
    return { rchar: Number(io.match(/^rchar: (\d+)/m)?.[1]), wchar: Number(io.match(/^wchar: (\d+)/m)?.[1]) }
  } catch {
    return { rchar: null, wchar: null }
  }
}

function relaySample() {
  const r = relay.report()
  const cpu = process.cpuUsage()
  relaySamples.push({
    t: now(),
    syncedWrites: r.syncedWrites,
    deposits: r.mailbox.deposits,
    stored: r.mailbox.stored,
    delivered: r.mailbox.delivered,
    held: r.mailbox.messages,
    connections: r.connections,
    rssMB: Math.round(r.rssBytes / 1048576),
    cpuMs: (cpu.user + cpu.system) / 1000,
    ...ioBytes(),
    connOpened: relayConns.opened,
    connClosed: relayConns.closed,
    monoUs: Number(process.hrtime.bigint() / 1000n)
  })
  if (relaySamples.length > 20_000) relaySamples.shift()
}

function newMember(init) {
  return {
    init,
    peerId: undefined,
    node: null,
    state: 'stopped',
    starts: 0,
    /** id → first message:receive time; a second receive of an id is a duplicate */
    recv: new Map(),
    dups: 0,
    /** id → time of the first 'held' / 'delivered' / 'failed' status at this (sending) member */
    held: new Map(),
    delivered: new Map(),
    failed: new Map(),
    /** [tStop, tStarted] per stop; the last one open while stopped */
    offline: [],
    /** mailbox client counters summed over incarnations */
    mailbox: { deposited: 0, held: 0, received: 0, receipts: 0, refused: 0 },
    dm: { sent: 0, received: 0, duplicates: 0 },
    activeSends: 0,
    /** why each failed start() of this member failed */
    startFailures: [],
    waiters: new Set()
  }
}

function attachMember(m, node) {
  if (Number(process.env.BENCH_DIAG_MS ?? 0) > 0) {
    queueMicrotask(() => {
      const watch = () =>
        node.libp2p?.addEventListener('connection:open', e => {
          const conn = e.detail
          if (!node.relays().some(r => r.endsWith(conn.remotePeer.toString()))) return
          const t0 = now()
          conn.addEventListener('close', evt => {
            m.diagCloses ??= []
            m.diagCloses.push(
              `${((now() - t0) / 1000).toFixed(0)}s-old ${evt.local ? 'local' : 'remote'} ${evt.error?.name ?? ''}: ${String(evt.error?.message ?? '').slice(0, 80)}`
            )
            log(`DIAGCLOSE ${node.peerId.slice(-8)} relay conn closed after ${((now() - t0) / 1000).toFixed(1)} s: ${m.diagCloses.at(-1)}`)
          })
        })
      if (node.libp2p != null) watch()
      else {
        const iv = setInterval(() => {
          if (node.libp2p != null) {
            clearInterval(iv)
            watch()
          }
        }, 5)
      }
    })
  }
  node.addEventListener('message:receive', e => {
    const id = e.detail.id
    if (m.recv.has(id)) m.dups++
    else m.recv.set(id, now())
  })
  node.addEventListener('message:status', e => {
    const { id, status } = e.detail
    const map = status === 'held' ? m.held : status === 'delivered' ? m.delivered : status === 'failed' ? m.failed : null
    if (map != null && !map.has(id)) map.set(id, now())
    if (status === 'held' || status === 'delivered') for (const w of m.waiters) w(status)
  })
}

/** Fold the counters of a member's stopping incarnation into its totals. */
function foldCounters(m) {
  const dm = m.node?.messaging?.dm
  if (dm == null) return
  for (const k of Object.keys(m.mailbox)) m.mailbox[k] += dm.mailbox?.stats[k] ?? 0
  for (const k of Object.keys(m.dm)) m.dm[k] += dm.stats[k] ?? 0
}

async function startMember(m) {
  if (m.state !== 'stopped') throw new Error(`member ${m.peerId ?? m.init.name} is ${m.state}`)
  m.state = 'starting'
  const { home, mesh, session, name, relays, listen } = m.init
  const node = await createMeshNode({ home, mesh, session, name, cwd: home, relays, listen, registry: false, control: false })
  // before start: mail a relay held arrives (and receipts settle) while start() is still running
  attachMember(m, node)
  try {
    await node.start()
  } catch (err) {
    m.state = 'stopped'
    throw err
  }
  m.node = node
  m.peerId = node.peerId
  m.starts++
  m.state = 'running'
  const last = m.offline.at(-1)
  if (last != null && last[1] == null) last[1] = now()
  for (const w of m.waiters) w('running')
  return node
}

async function stopMember(m) {
  // a member still starting is stopped once it runs (its restart was slow, not skipped)
  if (m.state === 'starting') await memberUntil(m, () => m.state !== 'starting')
  if (m.state !== 'running') throw new Error(`member ${m.peerId} is ${m.state}`)
  m.state = 'stopping'
  m.offline.push([now(), null])
  // sends already called finish first: a send is never cut off by its own node's stop
  const t = performance.now()
  while (m.activeSends > 0 && performance.now() - t < 10_000) await sleep(5)
  foldCounters(m)
  await withTimeout(m.node.stop(), 20_000, `stopping ${m.peerId}`)
  m.node = null
  m.state = 'stopped'
}

/** Resolve once `pred()` holds, re-checked whenever the member's state or statuses change. */
function memberUntil(m, pred) {
  if (pred()) return Promise.resolve()
  return new Promise(resolve => {
    const w = () => {
      if (pred()) {
        m.waiters.delete(w)
        resolve()
      }
    }
    m.waiters.add(w)
  })
}

/**
 * Why a DM to `to` would take the path it takes, read just before the send, in the order
 * DirectMessages.viaMailbox decides: 'queued' (earlier DMs wait for the mailbox: mailbox),
 * 'held' (earlier DMs held by the relay without a receipt: mailbox), 'connected' (direct),
 * 'online' (presence says online: direct, dialing), 'offline' (mailbox).
 */
function route(node, to) {
  const dm = node.messaging?.dm
  if (dm?.mailbox == null) return 'no-relay'
  if (dm.mailbox.has(to)) return 'queued'
  if (node.messaging.outbox.heldFor(to) > 0) return 'held'
  if (node.libp2p.getConnections().some(c => c.remotePeer.toString() === to)) return 'connected'
  return node.presence.get(to)?.online === true ? 'online' : 'offline'
}

const memberOf = id => {
  const m = members.get(id)
  if (m == null) throw new Error(`no member ${id} in this agent`)
  return m
}

const relayHandlers = {
  /** The relay of `mesh` (loaded from `home`), alone in this process. Returns its id and addresses. */
  async relayStart({ home, mesh, data, listen = ['/ip4/127.0.0.1/tcp/0'], limits, maxReservations, sampleMs = 1000 }) {
    if (relay != null) throw new Error('this agent already runs a relay')
    const relayDist = process.env.CLAUDEMESH_BENCH_RELAY_DIST ?? join(root, 'relay/dist')
    const { createRelay, createLog } = await import(pathToFileURL(join(relayDist, 'index.js')).href)
    const { loadMesh } = await import(pathToFileURL(join(dist, 'identity/index.js')).href)
    relay = await createRelay({ data, mesh: await loadMesh(home, mesh), listen, limits, maxReservations, log: createLog('warn') })
    await relay.start()
    relay.libp2p.addEventListener('connection:open', e => {
      relayConns.opened++
      // why the relay's connections close (a ping timeout under load, the remote, …)
      e.detail.addEventListener?.('close', evt => {
        const why = `${evt.local ? 'local' : 'remote'} ${evt.error?.name ?? 'close'}: ${String(evt.error?.message ?? '').slice(0, 60)}`
        relayCloseWhy.set(why, (relayCloseWhy.get(why) ?? 0) + 1)
      })
    })
    relay.libp2p.addEventListener('connection:close', () => {
      relayConns.closed++
    })
    relaySamples = []
    relaySample()
    relaySampler = setInterval(relaySample, sampleMs)
    if (Number(process.env.BENCH_DIAG_MS ?? 0) > 0) {
      // the relay's gossip: messages received (first copies), RPCs sent, per interval
      const ps = relay.libp2p.services.pubsub
      const c = { msgs: 0, rpcs: 0, fwd: 0, exch: 0 }
      ps.addEventListener('gossipsub:message', () => {
        c.msgs++
      })
      const sendRpc = ps.sendRpc.bind(ps)
      ps.sendRpc = (...a) => {
        c.rpcs++
        return sendRpc(...a)
      }
      const fwd = ps.forwardMessage.bind(ps)
      ps.forwardMessage = (...a) => {
        c.fwd++
        return fwd(...a)
      }
      const closes = new Map()
      relay.libp2p.addEventListener('connection:open', e => {
        e.detail.addEventListener('close', evt => {
          const why = `${evt.local ? 'local' : 'remote'} ${evt.error?.name ?? ''}: ${String(evt.error?.message ?? '').slice(0, 70)}`
          closes.set(why, (closes.get(why) ?? 0) + 1)
        })
      })
      const iv = Number(process.env.BENCH_DIAG_MS)
      setInterval(() => {
        if (closes.size > 0) log(`RDIAG closes: ${JSON.stringify([...closes])}`)
        closes.clear()
        log(
          `RDIAG per s: msgs ${((c.msgs * 1000) / iv).toFixed(0)} forwards ${((c.fwd * 1000) / iv).toFixed(0)} rpcs ${((c.rpcs * 1000) / iv).toFixed(0)}; conns ${relay.libp2p.getConnections().length}; loop p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} max ${(loopDelay.max / 1e6).toFixed(0)} ms`
        )
        c.msgs = c.rpcs = c.fwd = 0
      }, iv).unref()
    }
    if (process.env.BENCH_PROF_RELAY != null) {
      // BENCH_PROF_RELAY=<file>,<startS>,<lengthS>: a CPU profile of the relay's process over that window
      const [file, startS, lenS] = process.env.BENCH_PROF_RELAY.split(',')
      const { Session } = await import('node:inspector')
      const { writeFileSync } = await import('node:fs')
      const session = new Session()
      session.connect()
      setTimeout(() => {
        session.post('Profiler.enable', () =>
          session.post('Profiler.start', () => {
            log(`relay profile started`)
            setTimeout(
              () =>
                session.post('Profiler.stop', (err, r) => {
                  if (err == null) writeFileSync(file, JSON.stringify(r.profile))
                  log(`relay profile written: ${err?.message ?? file}`)
                }),
              Number(lenS) * 1000
            )
          })
        )
      }, Number(startS) * 1000)
    }
    loopDelay.reset()
    return { peerId: relay.peerId, addrs: relay.multiaddrs(), pid: process.pid }
  },

  /** The relay's health report, plus this process's CPU, memory and event-loop delay. */
  async relayReport() {
    const cpu = process.cpuUsage()
    return {
      report: relay.report(),
      connections: { ...relayConns, open: relay.libp2p.getConnections().length, closeWhy: Object.fromEntries(relayCloseWhy) },
      cpuUsageMs: { user: cpu.user / 1000, system: cpu.system / 1000 },
      memoryMB: Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1048576)])),
      loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
    }
  },

  /** Samples taken since `since` (a timestamp), and optionally forget them. */
  async relaySamples({ since = 0, reset = false } = {}) {
    relaySample()
    const out = relaySamples.filter(s => s.t >= since)
    if (reset) {
      relaySamples = []
      relaySample()
      loopDelay.reset()
    }
    return out
  },

  async relayStop() {
    clearInterval(relaySampler)
    if (relay == null) return false
    await withTimeout(relay.stop(), 20_000, 'stopping the relay')
    relay = null
    return true
  },

  /**
   * Create and start members (fresh sessions unless given). `listen: []` (the default) gives a
   * member no listener of its own: it is reachable only through the relays' circuits.
   */
  async mStart({ home, mesh, names, sessions = [], relays = [], listen = [], parallel = 5, attempts = 3, retryMs = 2_000 }) {
    const fresh = names.map((name, i) => newMember({ home, mesh, name, session: sessions[i] ?? randomUUID(), relays, listen }))
    const t0 = performance.now()
    const failures = []
    // `parallel` at a time; a start that fails (no relay reservation in time under load) is retried
    for (let i = 0; i < fresh.length; i += parallel) {
      await Promise.all(
        fresh.slice(i, i + parallel).map(async m => {
          for (let k = 1; ; k++) {
            try {
              return await startMember(m)
            } catch (err) {
              failures.push(err.message.split('\n')[0])
              log(`start of ${m.init.name} failed (attempt ${k}): ${err.message.split('\n')[0]}`)
              if (k >= attempts) throw err
              await sleep(retryMs)
            }
          }
        })
      )
    }
    for (const m of fresh) members.set(m.peerId, m)
    nodesStarted()
    log(
      `${fresh.length} member(s) started in ${(performance.now() - t0).toFixed(0)} ms${failures.length > 0 ? ` (${failures.length} failed start(s) retried)` : ''}`
    )
    return fresh.map(m => ({ peerId: m.peerId, session: m.init.session, name: m.init.name, failures }))
  },

  /** Stop members gracefully (their sends in progress finish first); they keep session and store. */
  async mStop({ ids }) {
    const t = performance.now()
    await Promise.all(ids.map(id => stopMember(memberOf(id))))
    return { ms: performance.now() - t, at: now() }
  },

  /**
   * Start stopped members again with the same session: same peer id, same inbox and outbox.
   * A start that fails (e.g. no relay reservation in time) is retried `attempts` times.
   */
  async mRestart({ ids, attempts = 3, retryMs = 1_000 }) {
    const t = performance.now()
    const failures = []
    await Promise.all(
      ids.map(async id => {
        const m = memberOf(id)
        if (m.state === 'running') return
        for (let i = 1; ; i++) {
          try {
            await startMember(m)
            break
          } catch (err) {
            failures.push(err.message.split('\n')[0])
            m.startFailures.push(err.message.split('\n')[0])
            log(`restart of ${id.slice(-8)} failed (attempt ${i}): ${err.message.split('\n')[0]}`)
            if (i >= attempts) throw err
            await sleep(retryMs)
          }
        }
        if (m.peerId !== id) throw new Error(`member came back as ${m.peerId}, not ${id}`)
      })
    )
    return { ms: performance.now() - t, at: now(), failures }
  },

  /** Ids of local members not running (stopped, starting or stopping). */
  async mDown() {
    return [...members.values()].filter(m => m.state !== 'running').map(m => m.peerId)
  },

  /**
   * Every running local member sees every id of `ids` (but itself) online (with `online:
   * false`: not online; with `known: true`: at all, online or not, so it can address it).
   */
  async mWaitSee({ ids, online = true, known = false, timeoutMs = 30_000 }) {
    const all = [...members.values()].filter(m => m.state === 'running').map(m => m.node)
    const seen = (n, id) => (known ? n.presence.get(id) != null : (n.presence.get(id)?.online === true) === online)
    const pred = () => all.every(n => ids.every(id => id === n.peerId || seen(n, id)))
    await until(
      all,
      ['peer:join', 'peer:update', 'peer:leave'],
      pred,
      timeoutMs,
      `every member to see every id ${known ? 'known' : online ? 'online' : 'offline'}`,
      250
    )
    return true
  },

  /** Per running local member: how many of `ids` (not itself) it sees online, and its connections. */
  async mSeen({ ids }) {
    return [...members.values()]
      .filter(m => m.state === 'running')
      .map(m => ({
        peer: m.peerId,
        online: ids.filter(id => id !== m.peerId && m.node.presence.get(id)?.online === true).length,
        known: ids.filter(id => id !== m.peerId && m.node.presence.get(id) != null).length,
        connections: m.node.libp2p.getConnections().length
      }))
  },

  /**
   * Every local member sends `perNode` DMs to seeded-random members of `targets` (not itself),
   * spread evenly over `spreadMs` (0: as fast as allowed), at most `concurrency` sends not yet
   * accepted per member. A member that is stopped pauses and goes on once it runs again.
   * Returns per member its [id, to, tSendCall, tAccepted] records.
   */
  async mBlast({ perNode = 200, targets, concurrency = 4, spreadMs = 0, seed = 1, bodySize = 120 }) {
    const pad = 'r'.repeat(bodySize)
    const t0 = now()
    return Promise.all(
      [...members.values()].map(async (m, k) => {
        const rand = seeded(seed * 7919 + [...m.peerId].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) | 0, k))
        const others = targets.filter(t => t !== m.peerId)
        const records = []
        let errors = 0
        let lastError
        let issued = 0
        const worker = async () => {
          while (issued < perNode) {
            const i = issued++
            const due = t0 + spreadMs * (i / perNode)
            if (due > now()) await sleep(due - now())
            const to = others[Math.floor(rand() * others.length)]
            while (m.state !== 'running') await memberUntil(m, () => m.state === 'running')
            m.activeSends++
            const ts = now()
            const why = route(m.node, to)
            try {
              const [r] = await m.node.mail.send(to, `${i} ${pad}`, { priority: 'next' })
              records.push([r.id, to, ts, now(), why])
            } catch (err) {
              errors++
              lastError = err.message
            } finally {
              m.activeSends--
            }
          }
        }
        await Promise.all(Array.from({ length: concurrency }, worker))
        return { peer: m.peerId, records, errors, lastError }
      })
    )
  },

  /**
   * Flood: each local member of `from` sends DMs to `to` (a stopped member, so all go to the
   * relay's mailbox) for `seconds`, with at most `window` sends not yet `held`. Counts per
   * second of the window the sends accepted and the `held` statuses.
   */
  async mFlood({ from, to, seconds = 10, window = 4096, maxOutstanding = 512, bodySize = 64, drainMs = 20_000 }) {
    const pad = 'f'.repeat(bodySize)
    const t0 = now()
    const bucket = () => Math.floor((now() - t0) / 1000)
    const per = await Promise.all(
      from.map(async id => {
        const m = memberOf(id)
        const heldPerSec = new Array(seconds).fill(0)
        const acceptPerSec = new Array(seconds).fill(0)
        const unheld = new Set()
        const early = new Set()
        let outstanding = 0
        let accepted = 0
        let held = 0
        let heldInWindow = 0
        let errors = 0
        let lastError
        let sending = true
        let wake = () => {}
        const onStatus = e => {
          if (e.detail.status !== 'held') return
          const id = e.detail.id
          if (unheld.delete(id)) {
            held++
            const b = bucket()
            if (b < seconds) {
              heldPerSec[b]++
              heldInWindow++
            }
            pump()
            wake()
          } else {
            early.add(id)
          }
        }
        let seq = 0
        const pump = () => {
          while (sending && outstanding < maxOutstanding && outstanding + unheld.size < window) {
            outstanding++
            m.node.mail
              .send(to, `${seq++} ${pad}`, { priority: 'next' })
              .then(
                ([r]) => {
                  accepted++
                  const b = bucket()
                  if (b < seconds) acceptPerSec[b]++
                  if (early.delete(r.id)) {
                    held++
                    if (b < seconds) {
                      heldPerSec[b]++
                      heldInWindow++
                    }
                  } else {
                    unheld.add(r.id)
                  }
                },
                err => {
                  errors++
                  lastError = err.message
                }
              )
              .finally(() => {
                outstanding--
                pump()
                wake()
              })
          }
        }
        m.node.addEventListener('message:status', onStatus)
        try {
          pump()
          await sleep(seconds * 1000)
          sending = false
          const tStop = now()
          const drained = await new Promise(resolve => {
            const timer = setTimeout(() => resolve(false), drainMs)
            wake = () => {
              if (outstanding === 0 && unheld.size === 0) {
                clearTimeout(timer)
                resolve(true)
              }
            }
            wake()
          })
          return {
            peer: id,
            accepted,
            held,
            heldInWindow,
            heldPerSec,
            acceptPerSec,
            tStart: t0,
            windowMs: tStop - t0,
            drainMs: now() - tStop,
            drained,
            unheldLeft: unheld.size,
            errors,
            lastError
          }
        } finally {
          sending = false
          m.node.removeEventListener('message:status', onStatus)
        }
      })
    )
    return per
  },

  /**
   * The relay's side alone: `count` envelopes from member `from` to `to`, sealed before the
   * clock starts, handed straight to the member's mailbox client (no outbox write, no
   * sealing in the window), which deposits them with its window of unacknowledged deposits.
   * Counts the relay's `h` acks (mailbox client `held`) per second for up to `seconds`.
   */
  async mRawDeposit({ from, to, count = 100_000, seconds = 10, bodySize = 64 }) {
    const m = memberOf(from)
    const dm = m.node.messaging.dm
    const { sealDm, newMessageId, idText } = await import(pathToFileURL(join(dist, 'messaging/envelope.js')).href)
    const { publicKeyOfPeer } = await import(pathToFileURL(join(dist, 'identity/index.js')).href)
    const pub = publicKeyOfPeer(to)
    const key = dm.keys.key(pub)
    const self = m.node.libp2p.peerId.publicKey.raw
    const pad = 'w'.repeat(bodySize)
    const ts = Date.now()
    const exp = ts + 7 * 24 * 3600_000
    const tSeal = performance.now()
    const items = []
    for (let i = 0; i < count; i++) {
      const id = newMessageId()
      items.push({
        id: idText(id),
        to,
        env: sealDm(dm.init.meshId, key, { from: self, to: pub, id, ts, exp }, { body: `${i} ${pad}`, pri: 'next' }),
        createdAt: ts,
        exp
      })
    }
    const sealMs = performance.now() - tSeal
    const stats = dm.mailbox.stats
    const held0 = stats.held
    const perSec = []
    const t0 = performance.now()
    const tStart = now()
    dm.mailbox.deposit(items)
    let last = held0
    for (let s = 0; s < seconds && stats.held - held0 < count; s++) {
      await sleep(Math.max(0, t0 + (s + 1) * 1000 - performance.now()))
      perSec.push(stats.held - last)
      last = stats.held
    }
    const windowMs = performance.now() - t0
    return {
      peer: from,
      sealMs,
      sealedPerSec: Math.round(count / (sealMs / 1000)),
      held: stats.held - held0,
      perSec,
      tStart,
      windowMs,
      allHeld: stats.held - held0 >= count,
      queuedLeft: dm.mailbox.queued
    }
  },

  /** Dial member `to` from local member `from` (through the relay's circuit for `listen: []` members): time and error. */
  async mDial({ from, to, timeoutMs = 10_000 }) {
    const m = memberOf(from)
    const t = performance.now()
    try {
      await m.node.dialer.connect(to, { signal: AbortSignal.timeout(timeoutMs) })
      const conn = m.node.libp2p.getConnections().find(c => c.remotePeer.toString() === to)
      return { ok: true, ms: performance.now() - t, addr: conn?.remoteAddr.toString() ?? null, known: m.node.presence.get(to)?.addrs ?? [] }
    } catch (err) {
      return {
        ok: false,
        ms: performance.now() - t,
        error: `${err.name}: ${err.message.split('\n')[0]}`.slice(0, 300),
        known: m.node.presence.get(to)?.addrs ?? []
      }
    }
  },

  /** Totals over local members: received, duplicates, held/delivered statuses, running. */
  async mCounts() {
    const c = { recv: 0, dups: 0, held: 0, delivered: 0, failed: 0, running: 0, members: members.size }
    for (const m of members.values()) {
      c.recv += m.recv.size
      c.dups += m.dups
      c.held += m.held.size
      c.delivered += m.delivered.size
      c.failed += m.failed.size
      if (m.state === 'running') c.running++
    }
    return c
  },

  /**
   * Per member, across restarts: received ids in order with times, duplicates, first
   * held/delivered/failed status times of its sends, offline intervals, counters.
   */
  async mDump() {
    return [...members.values()].map(m => {
      const dm = m.node?.messaging?.dm
      const live = (k, o) => (m.state === 'running' ? (o?.[k] ?? 0) : 0)
      return {
        peer: m.peerId,
        name: m.init.name,
        recvIds: [...m.recv.keys()],
        recvTimes: [...m.recv.values()],
        dups: m.dups,
        held: [...m.held],
        delivered: [...m.delivered],
        failed: [...m.failed],
        offline: m.offline,
        starts: m.starts,
        startFailures: m.startFailures,
        mailbox: Object.fromEntries(Object.keys(m.mailbox).map(k => [k, m.mailbox[k] + live(k, dm?.mailbox?.stats)])),
        dm: Object.fromEntries(Object.keys(m.dm).map(k => [k, m.dm[k] + live(k, dm?.stats)])),
        outboxPending: m.node?.messaging?.outbox.size ?? null,
        connections: m.node?.libp2p.getConnections().length ?? null
      }
    })
  },

  /** Stop every running member (the end of a run). */
  async mStopAll() {
    await Promise.allSettled([...members.values()].filter(m => m.state === 'running').map(m => stopMember(m)))
    return true
  }
}
Object.assign(handlers, relayHandlers)

process.on('message', async msg => {
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
