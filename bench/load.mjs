// The broker harness's workload (issue 12 item 1), one JSON object on stdout, progress on stderr:
// N peers × M DMs, every peer calling send() for its M DMs in one burst (all calls issued at
// once, none awaited first), each to a seeded-random other peer. Delivery is counted at the
// recipients (`message:receive`), never inferred from acks. Two modes per size:
//  - direct: one shared home, registry discovery, every node listening on loopback, no relay;
//  - relay: one relay (alone in its process) and members with `listen: []`, so members reach
//    each other only through the relay (bench/lib/relay.mjs startMembers).
// Per size and mode: delivered %, duplicates, unexpected ids, out-of-order (per sender →
// recipient pair, by send-call order), latency send call → receive (p50/p95/p99/max), send
// call → accepted, p50 send call → 'delivered' ack, peak RSS per process and in total with a
// per-node estimate, CPU seconds (children's user+sys), the agents' GC pauses and live heap, wall
// time; targets beside them.
// Layout: nodes share agent processes (lib/agent.mjs), LOAD_PROCS per size (default
// max(2, ceil(N/20))): 100 node processes on 2 cores would measure the scheduler. Sharing a
// process shares its event loop and its baseline memory: `rss.perNodeMarginalMB` is (sum of
// peak RSS − agents' baseline RSS before any node) / N, the cost of one more node; a node alone
// in its own process costs that plus the baseline (`rss.perNodeAloneEstimateMB`).
// Env: LOAD_SIZES=10x100,25x100 (default all five; BENCH_QUICK=1: 10x100), LOAD_MODES=direct,relay,
// LOAD_ROUNDS (2: the judged first burst, then the same again "warm" on the connections the
// first opened), LOAD_PROCS=<n> (agent processes for the nodes), LOAD_WAIT_S (delivery bound per case; default
// 30 + 3 ms per DM), BENCH_SEED, BENCH_CPU_PROF=<dir> (every agent under --cpu-prof, startup
// included), BENCH_SIGPROF=<dir> (the member agents profiled from the burst to the last ack;
// summarise with `node bench/lib/cpuprof.mjs <dir> --inclusive`; the relay's agent too).
// A/B against another build: CLAUDEMESH_BENCH_NODE_DIST=<a copy of packages/node/dist> for the
// members, CLAUDEMESH_BENCH_RELAY_DIST=<a copy of relay/dist> for the relay (lib/agent.mjs
// relayStart; a copy inside relay/, e.g. relay/dist/base, so its imports still resolve).
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { lat, r3, withAgents } from './lib/agents.mjs'
import { emit, guard, progress, resetPeakRss, round, section, sleep } from './lib/harness.mjs'
import { startMembers, withRelayMesh } from './lib/relay.mjs'

const quick = process.env.BENCH_QUICK === '1'
const SIZES = (process.env.LOAD_SIZES ?? (quick ? '10x100' : '10x100,25x100,50x100,100x100,100x1000')).split(',').map(s => {
  const [n, m] = s.trim().split('x').map(Number)
  if (!(n >= 2 && m >= 1)) throw new Error(`LOAD_SIZES: bad size ${s} (want NxM, N ≥ 2)`)
  return { n, m, key: `${n}x${m}` }
})
const MODES = (process.env.LOAD_MODES ?? 'direct,relay').split(',').map(s => s.trim())
const SEED = Number(process.env.BENCH_SEED ?? 1)
const now = () => performance.timeOrigin + performance.now()

/** The issue's targets; every case must also deliver 100 % exactly once. */
const TARGETS = {
  '10x100': { p99: 100 },
  '100x100': { p99: 2_000 },
  '100x1000': { p50: 3_000, p99: 10_000 }
}
const RSS_TARGET_MB = 2_048 // all 100 nodes together

const procsFor = n => Math.min(n, Number(process.env.LOAD_PROCS ?? Math.max(2, Math.ceil(n / 20))))
/** rounds per case: the first on the connections start-up left, the second ('warm') on those the first opened */
const ROUNDS = Number(process.env.LOAD_ROUNDS ?? 2)
const waitMsFor = dms => Number(process.env.LOAD_WAIT_S ?? 0) * 1000 || 30_000 + 3 * dms

const result = { quick, seed: SEED, layout: 'nodes share agent processes (see rss.note)', cases: {} }
guard(Number(process.env.BENCH_TIMEOUT_MS ?? 450_000) - 20_000, () => result)

/** Agents' RSS before they host anything: what a process costs with the node package loaded. */
const baselines = agents => agents.map(a => a.mem()?.rss ?? null)

/** Direct mode: `n` nodes (registry discovery in one home) spread over the agents; all see all online. */
async function startDirect(home, agents, n) {
  const per = Math.ceil(n / agents.length)
  const names = agents.map((_, i) => Array.from({ length: Math.max(0, Math.min(per, n - i * per)) }, (_, j) => `n${i * per + j}`))
  const t = performance.now()
  const ids = await Promise.all(agents.map((a, i) => a.call('start', { home, mesh: 'bench', names: names[i] }, 120_000)))
  const all = ids.flat()
  const seeMs = Math.max(30_000, n * 1_000)
  const allOnline = await Promise.all(agents.map(a => a.call('waitSee', { ids: all, timeoutMs: seeMs }, seeMs + 10_000))).then(
    () => true,
    err => {
      progress(`not every node sees every other online: ${err.message.split('\n')[0]}`)
      return false
    }
  )
  return { all, startMs: round(performance.now() - t), allOnline }
}

/** BENCH_SIGPROF=<dir>: toggle the agents' CPU profile (lib/agent.mjs) around the burst only. */
async function sigprof(agents) {
  if (process.env.BENCH_SIGPROF == null) return
  await Promise.all(agents.filter(a => a != null).map(a => a.call('profile', {}, 60_000)))
}

/** Burst, then wait (bounded) until every accepted DM was received and acked; returns the raw material. */
async function burstAndWait(agents, all, m, useMembers, relayAgent) {
  const countCmd = useMembers ? 'mCounts' : 'counts'
  if (!useMembers) await Promise.all(agents.map(a => a.call('resetRecv')))
  const counts = async () =>
    (await Promise.all(agents.map(a => a.call(countCmd, {}, 30_000)))).reduce(
      (s, x) => ({ recv: s.recv + x.recv, acked: s.acked + (x.acked ?? x.delivered), dups: s.dups + x.dups }),
      { recv: 0, acked: 0, dups: 0 }
    )
  // members' counters run across rounds: count from here
  const c0 = await counts()
  await sigprof([...agents, relayAgent])
  await Promise.all(agents.map(a => a.call('gcWindow')))
  const cpu0 = agents.map(a => a.cpuMs())
  const relayCpu0 = relayAgent?.cpuMs()
  const relayConns0 = relayAgent != null ? (await relayAgent.call('relayReport', {}, 30_000)).connections : null
  const t0 = now()
  const bursts = (
    await Promise.all(agents.map(a => a.call('burst', { perNode: m, targets: all, seed: SEED, members: useMembers }, 600_000)))
  ).flat()
  const tAccepted = now()
  const accepted = bursts.reduce((k, b) => k + b.records.length, 0)
  progress(`${accepted} DMs accepted in ${round(tAccepted - t0)} ms; waiting for delivery`)
  const deadline = performance.now() + waitMsFor(all.length * m)
  let c
  while (true) {
    c = await counts()
    if ((c.recv - c0.recv >= accepted && c.acked - c0.acked >= accepted) || performance.now() > deadline) break
    await sleep(c.recv - c0.recv >= accepted ? 20 : 100)
  }
  const tEnd = now()
  const cpu1 = agents.map(a => a.cpuMs())
  const relayCpuMs = relayAgent != null ? relayAgent.cpuMs() - relayCpu0 : null
  const relayConns1 = relayAgent != null ? (await relayAgent.call('relayReport', {}, 30_000)).connections : null
  await sigprof([...agents, relayAgent])
  const gc = await Promise.all(agents.map(a => a.call('gcWindow')))
  const dumps = (await Promise.all(agents.map(a => a.call('loadDump', { members: useMembers, since: t0 }, 60_000)))).flat()
  // what else the nodes did meanwhile (direct mode: counters since resetRecv), summed over nodes
  const churn = {}
  if (!useMembers) {
    for (const s of (await Promise.all(agents.map(a => a.call('stats', {}, 60_000)))).flatMap(x => x.slice(0, -1))) {
      for (const [k, v] of Object.entries({
        ...s.counters,
        ...Object.fromEntries(Object.entries(s.presence ?? {}).map(([k, v]) => [`presence_${k}`, v]))
      }))
        churn[k] = (churn[k] ?? 0) + v
      for (const [k, v] of Object.entries(s.closeWhy ?? {})) (churn.closeWhy ??= {})[k] = (churn.closeWhy[k] ?? 0) + v
    }
  }
  return {
    bursts,
    dumps,
    dups: c.dups - c0.dups,
    t0,
    tAccepted,
    tEnd,
    churn,
    timedOut: c.recv - c0.recv < accepted,
    cpuMs: cpu1.map((x, i) => x - cpu0[i]),
    gc,
    relayCpuMs,
    // the relay's connections over the round: a member cut off waits for its redial
    relayConnections:
      relayConns1 == null
        ? null
        : {
            openAtEnd: relayConns1.open,
            opened: relayConns1.opened - relayConns0.opened,
            closed: relayConns1.closed - relayConns0.closed,
            closeWhy: Object.fromEntries(
              Object.entries(relayConns1.closeWhy ?? {})
                .map(([k, v]) => [k, v - (relayConns0.closeWhy?.[k] ?? 0)])
                .filter(([, v]) => v > 0)
            )
          }
  }
}

/** Delivery, order and latency from the senders' records and the recipients' dumps. */
function analyse({ bursts, dumps, dups, t0 }) {
  const recvAt = new Map()
  const recvBy = new Map()
  const ackAt = new Map()
  for (const d of dumps) {
    d.recvIds.forEach((id, i) => {
      recvAt.set(id, d.recvTimes[i])
      recvBy.set(id, d.peer)
    })
    d.ackIds.forEach((id, i) => {
      ackAt.set(id, d.ackTimes[i])
    })
  }
  const seqOf = new Map() // id → [sender, seq]
  const callToRecv = []
  const callToAccept = []
  const acceptToRecv = []
  const callToAck = []
  let received = 0
  let misrouted = 0
  let tLast = t0
  for (const b of bursts) {
    for (const [seq, id, to, tc, ta] of b.records) {
      seqOf.set(id, [b.peer, seq])
      callToAccept.push(ta - tc)
      const ak = ackAt.get(id)
      if (ak != null) callToAck.push(ak - tc)
      const tr = recvAt.get(id)
      if (tr == null) continue
      received++
      if (recvBy.get(id) !== to) misrouted++
      tLast = Math.max(tLast, tr)
      callToRecv.push(tr - tc)
      acceptToRecv.push(tr - ta)
    }
  }
  // out of order: at a recipient, a DM of a sender arriving after one that sender called later
  let outOfOrder = 0
  let unexpected = 0
  const oooPerSender = new Map()
  for (const d of dumps) {
    const highest = new Map()
    for (const id of d.recvIds) {
      const s = seqOf.get(id)
      if (s == null) {
        unexpected++
        continue
      }
      const [from, seq] = s
      const h = highest.get(from) ?? -1
      if (seq < h) {
        outOfOrder++
        oooPerSender.set(from, (oooPerSender.get(from) ?? 0) + 1)
      } else {
        highest.set(from, seq)
      }
    }
  }
  const accepted = seqOf.size
  const p = xs => {
    const l = lat(xs)
    return { n: l.n, p50: l.p50, p95: pct(xs, 0.95), p99: l.p99, max: l.max, mean: l.mean }
  }
  return {
    accepted,
    received,
    deliveredPct: round(accepted === 0 ? 0 : (100 * received) / accepted, 3),
    duplicates: dups,
    unexpected,
    misrouted,
    outOfOrder,
    sendersWithOutOfOrder: oooPerSender.size,
    maxOutOfOrderPerSender: Math.max(0, ...oooPerSender.values()),
    ackedPct: round((100 * callToAck.length) / Math.max(1, accepted), 3),
    latencyMs: p(callToRecv),
    acceptMs: p(callToAccept),
    acceptToReceiveMs: p(acceptToRecv),
    sendToAckMs: p(callToAck),
    wallMs: round(tLast - t0)
  }
}

function pct(xs, q) {
  if (xs.length === 0) return null
  const s = Float64Array.from(xs).sort()
  return r3(s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))])
}

/** Peak RSS per process and per node, measured against the agents' baseline before any node. */
function rssReport(agents, base, n, relayAgent) {
  const peak = agents.map(a => a.mem()?.hwm ?? null)
  const sum = peak.reduce((s, x) => s + (x ?? 0), 0)
  const baseSum = base.reduce((s, x) => s + (x ?? 0), 0)
  const marginal = (sum - baseSum) / n
  const baseOne = base.reduce((s, x) => s + (x ?? 0), 0) / Math.max(1, base.length)
  return {
    peakPerProcessMB: peak,
    totalPeakMB: round(sum),
    ...(relayAgent != null ? { relayPeakMB: relayAgent.mem()?.hwm ?? null } : {}),
    agentBaselineMB: round(baseOne),
    perNodeMarginalMB: round(marginal),
    perNodeAloneEstimateMB: round(marginal + baseOne),
    nodesPerProcess: Math.ceil(n / agents.length),
    note: 'peak RSS (VmHWM) of each agent process, startup included (a warm round: since that round began, sinceRoundStart); marginal = (total − baselines) / N; alone = marginal + one baseline'
  }
}

function judge(key, r, n) {
  const t = TARGETS[key] ?? {}
  const exactlyOnce = r.deliveredPct === 100 && r.duplicates === 0 && r.unexpected === 0 && r.misrouted === 0
  const checks = [['100 % exactly once', exactlyOnce]]
  if (t.p50 != null) checks.push([`p50 < ${t.p50} ms`, r.latencyMs.p50 < t.p50])
  if (t.p99 != null) checks.push([`p99 < ${t.p99} ms`, r.latencyMs.p99 < t.p99])
  if (n >= 100) checks.push([`all ${n} nodes < ${RSS_TARGET_MB} MB`, r.rss.totalPeakMB < RSS_TARGET_MB])
  return {
    target: checks.map(([what]) => what).join('; '),
    exactlyOnce,
    meetsTarget: checks.every(([, ok]) => ok),
    missed: checks.filter(([, ok]) => !ok).map(([what]) => what)
  }
}

/** One round's figures (everything but memory, which is the processes' peak over the case). */
function measureRound(raw, mode) {
  const a = analyse(raw)
  const sendErrors = raw.bursts.reduce((k, b) => k + b.errors, 0)
  const cpuS = raw.cpuMs.reduce((s, x) => s + x, 0) / 1000
  const relayCpuS = (raw.relayCpuMs ?? 0) / 1000
  const dmStats = raw.dumps.map(d => d.dm).filter(Boolean)
  const sum = key =>
    dmStats.reduce((o, s) => {
      for (const [k, v] of Object.entries(s[key] ?? {})) o[k] = (o[k] ?? 0) + v
      return o
    }, {})
  return {
    ok: !raw.timedOut && sendErrors === 0,
    sendErrors,
    ...(sendErrors > 0 ? { lastError: raw.bursts.find(b => b.lastError != null)?.lastError } : {}),
    ...a,
    allAcceptedMs: round(raw.tAccepted - raw.t0),
    timedOut: raw.timedOut,
    cpuSeconds: {
      total: round(cpuS + relayCpuS, 2),
      nodes: round(cpuS, 2),
      ...(raw.relayCpuMs != null ? { relay: round(relayCpuS, 2) } : {}),
      perProcess: raw.cpuMs.map(x => round(x / 1000, 2)),
      window: 'first send call → every DM received and acked'
    },
    liveHeapMB: {
      perProcess: raw.gc.map(g => g.liveHeapMB),
      total: round(raw.gc.reduce((a, g) => a + g.liveHeapMB, 0)),
      what: 'per agent process, the largest heap left after a major GC in the same window (0: none ran); V8 sizes its heap from it, so peak RSS follows it, less noisily'
    },
    gcPauseMs: {
      minor: raw.gc.reduce((a, g) => a + g.minorMs, 0),
      major: raw.gc.reduce((a, g) => a + g.majorMs, 0),
      majorGCs: raw.gc.reduce((a, g) => a + g.majors, 0),
      what: "the member agents' main-thread GC pauses in the same window, summed: scavenges (minor), mark-compacts with their incremental steps and weak callbacks (major); what a heap policy trades against memory. Wall time on the main thread: parallel scavenges wait for helper threads that share the cores, so it overstates CPU (semi-space 16 -> 64 MB cut minor pauses 10.2 -> 5.9 s at 100x1000 but CPU 32.5 -> 31.2 s, for 460 MB more RSS); concurrent marking is in cpuSeconds only"
    },
    ...(mode === 'direct' ? { churnDuringBurst: raw.churn } : { relayConnections: raw.relayConnections }),
    connectionsPerNodeAtEnd: lat(raw.dumps.map(d => d.connections ?? 0)),
    outboxPendingAtEnd: raw.dumps.reduce((k, d) => k + (d.outboxPending ?? 0), 0),
    /** cumulative over the nodes' lives (flood control, §8.8; choke-point, §8.4) */
    refusedAtRecipients: sum('refused'),
    rejectedAtRecipients: sum('rejected')
  }
}

const line = r =>
  `${r.deliveredPct} % delivered, ${r.duplicates} dup, ${r.outOfOrder} ooo, p50 ${r.latencyMs.p50} / p99 ${r.latencyMs.p99} ms, ack p50 ${r.sendToAckMs.p50} ms, CPU ${r.cpuSeconds.total} s, wall ${r.wallMs} ms${r.rss != null ? `, RSS ${r.rss.totalPeakMB} MB` : ''}`

async function runCase({ n, m, key }, mode) {
  const procs = procsFor(n)
  const t = performance.now()
  const run = async ({ home, agents, relayAgent, relayAddr }) => {
    const base = baselines(agents)
    let startup
    let all
    if (mode === 'relay') {
      const s = await startMembers(home, agents, n, relayAddr, { seeTimeoutMs: Math.max(60_000, n * 2_400) })
      startup = { ms: round(s.startMs + s.seeMs), allKnowAll: s.allKnown, allSeeAllOnline: s.allOnline }
      all = s.all
    } else {
      const s = await startDirect(home, agents, n)
      startup = { ms: s.startMs, allSeeAllOnline: s.allOnline }
      all = s.all
    }
    const rounds = []
    for (let i = 0; i < ROUNDS; i++) {
      // each round's own peak: the kernel's high-water mark is reset to the current RSS first
      // (the first round's peak includes start-up, as it always did)
      const hwmReset = i === 0 || [...agents, relayAgent].every(a => a == null || resetPeakRss(a.pid))
      rounds.push(await measureRound(await burstAndWait(agents, all, m, mode === 'relay', relayAgent), mode))
      rounds[i].rss = { ...rssReport(agents, base, n, relayAgent), ...(i > 0 ? { sinceRoundStart: hwmReset } : {}) }
      progress(`${key} ${mode} round ${i + 1}: ${line(rounds[i])}`)
    }
    const r = {
      ...rounds[0],
      layout: `${n} ${mode === 'relay' ? 'members (listen: [], only via the relay)' : 'nodes (one home, registry discovery, no relay)'} in ${agents.length} agent process(es)${mode === 'relay' ? ' + the relay alone in one' : ''}`,
      attempted: n * m,
      startup,
      ...(rounds.length > 1
        ? { warm: { what: 'the same burst again, on the connections and channels the first one opened', ...rounds[1] } }
        : {}),
      caseWallS: round((performance.now() - t) / 1000)
    }
    r.ok = rounds.every(x => x.ok)
    Object.assign(r, judge(key, r, n))
    progress(`${key} ${mode}: ${line(r)} → ${r.meetsTarget ? `meets ${r.target}` : `misses ${r.missed.join('; ')}`}`)
    return r
  }
  if (mode === 'relay') {
    return withRelayMesh({ memberProcs: procs, prefix: `load${key}` }, ({ home, relayAgent, relayAddr, agents }) =>
      run({ home, agents, relayAgent, relayAddr })
    )
  }
  return withAgents(procs, 'load', run)
}

for (const size of SIZES) {
  for (const mode of MODES) {
    if (mode !== 'direct' && mode !== 'relay') throw new Error(`LOAD_MODES: unknown mode ${mode}`)
    const r = await section(`load ${size.key} ${mode}`, () => runCase(size, mode))
    ;(result.cases[size.key] ??= {})[mode] = r
  }
}
result.loadavg1m5m15mAtEnd = loadavg().map(x => round(x, 2))
result.summary = Object.entries(result.cases).flatMap(([key, modes]) =>
  Object.entries(modes).map(([mode, r]) =>
    r?.ok === false && r.latencyMs == null
      ? { case: `${key} ${mode}`, error: r.error }
      : {
          case: `${key} ${mode}`,
          deliveredPct: r.deliveredPct,
          dup: r.duplicates,
          ooo: r.outOfOrder,
          p50: r.latencyMs?.p50,
          p99: r.latencyMs?.p99,
          ackP50: r.sendToAckMs?.p50,
          rssMB: r.rss?.totalPeakMB,
          ...(r.warm?.rss != null ? { warmRssMB: r.warm.rss.totalPeakMB } : {}),
          cpuS: r.cpuSeconds?.total,
          wallMs: r.wallMs,
          target: r.target,
          meets: r.meetsTarget
        }
  )
)
result.ok = Object.values(result.cases).every(modes => Object.values(modes).every(r => r?.ok !== false))
emit(result)
process.exit(0)
