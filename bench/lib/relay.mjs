// The relay scenarios shared by bench/relay.mjs and scripts/relay-soak.mjs. The relay runs
// alone in one agent process (lib/agent.mjs `relayStart`), members in other agents
// (`mStart` with `listen: []`: no listener of their own, reachable only through the relay).
//  - runLoad: members send DMs to random members (circuit when the recipient is online,
//    mailbox when not) while a third of them go offline and come back at seeded random times;
//    waits until every accepted DM was received, then reports delivery, duplicates, latency
//    (live vs. mailbox), the relay's synced writes/s, CPU and memory.
//  - runWrites: senders flood deposits for one stopped member: the mailbox's durable deposit rate.
// Timestamps crossing processes are performance.timeOrigin + performance.now() (see agent.mjs).
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { lat, r3, spawnAgent, stopAgents } from './agents.mjs'
import { progress, removeDir, round, seeded, sleep, tempDir } from './harness.mjs'

const now = () => performance.timeOrigin + performance.now()

/**
 * A fresh home with one mesh, a relay agent running the relay, and `memberProcs` member agents.
 * `fn({ home, relayAgent, relayAddr, agents })`; everything is stopped and removed afterwards.
 */
export async function withRelayMesh({ memberProcs, prefix, limits, cpuProfDir }, fn) {
  const home = tempDir('claudemesh-bench-relay-')
  const agents = []
  let relayAgent
  try {
    const spawned = await Promise.allSettled([
      spawnAgent(`${prefix}-relay`, { cpuProfDir }),
      ...Array.from({ length: memberProcs }, (_, i) => spawnAgent(`${prefix}${i}`, { cpuProfDir }))
    ])
    const ok = spawned.filter(s => s.status === 'fulfilled').map(s => s.value)
    relayAgent = ok[0]
    agents.push(...ok.slice(1))
    const failed = spawned.find(s => s.status === 'rejected')
    if (failed != null) throw failed.reason
    await relayAgent.call('createMesh', { home, mesh: 'bench' })
    const r = await relayAgent.call(
      'relayStart',
      { home, mesh: 'bench', data: join(home, 'relay-data'), listen: ['/ip4/127.0.0.1/tcp/0'], limits },
      60_000
    )
    const relayAddr = r.addrs.find(a => a.includes('/tcp/')) ?? r.addrs[0]
    progress(`relay ${r.peerId.slice(-8)} on ${relayAddr} (pid ${r.pid})`)
    return await fn({ home, relayAgent, relayAddr, relayId: r.peerId, agents })
  } finally {
    await Promise.allSettled(agents.map(a => a.call('mStopAll', {}, 60_000)))
    await relayAgent?.call('relayStop', {}, 30_000).catch(err => {
      progress(`relay stop: ${err.message}`)
    })
    await stopAgents([relayAgent, ...agents])
    removeDir(home)
  }
}

/** How many of the other members each member sees online (min/median/max over members). */
export async function onlineView(agents, all) {
  const seen = (await Promise.all(agents.map(a => a.call('mSeen', { ids: all }, 30_000)))).flat()
  const on = seen.map(s => s.online).sort((a, b) => a - b)
  return {
    of: all.length - 1,
    min: on[0] ?? null,
    median: on[Math.floor((on.length - 1) / 2)] ?? null,
    max: on.at(-1) ?? null,
    membersSeeingAll: on.filter(x => x >= all.length - 1).length
  }
}

/**
 * Start `size` members spread over the agents (agent i gets a contiguous share), one agent
 * at a time; then wait until every member knows every other (so it can address it), and
 * for at most `onlineWaitMs` more until every member sees every other online.
 */
export async function startMembers(home, agents, size, relayAddr, { seeTimeoutMs = 60_000, onlineWaitMs = 10_000 } = {}) {
  const per = Math.ceil(size / agents.length)
  const names = agents.map((_, i) => Array.from({ length: Math.max(0, Math.min(per, size - i * per)) }, (_, j) => `m${i * per + j}`))
  const t = performance.now()
  // one agent at a time: 50 nodes starting at once on 2 cores time out their first dials
  const started = []
  for (const [i, a] of agents.entries())
    started.push(await a.call('mStart', { home, mesh: 'bench', names: names[i], relays: [relayAddr], listen: [] }, 120_000))
  const startMs = performance.now() - t
  const all = started.flat().map(m => m.peerId)
  const startFailures = started.flatMap(ms => ms[0]?.failures ?? [])
  const owner = new Map()
  started.forEach((ms, i) => {
    for (const m of ms) owner.set(m.peerId, agents[i])
  })
  // sends need their recipients known; past the timeout the run goes on (sends to a peer still unknown fail and are counted)
  const allKnown = await Promise.all(
    agents.map(a => a.call('mWaitSee', { ids: all, known: true, timeoutMs: seeTimeoutMs }, seeTimeoutMs + 10_000))
  ).then(
    () => true,
    err => {
      progress(`not every member knows every other after ${round(seeTimeoutMs / 1000)} s: ${err.message.split('\n')[0]}`)
      return false
    }
  )
  const knownMs = performance.now() - t - startMs
  // presence reaches members only through the relay's gossipsub mesh: all-see-all online may never hold at once
  const allOnline =
    allKnown &&
    (await Promise.all(agents.map(a => a.call('mWaitSee', { ids: all, timeoutMs: onlineWaitMs }, onlineWaitMs + 10_000))).then(
      () => true,
      () => false
    ))
  const seeMs = performance.now() - t - startMs
  const view = await onlineView(agents, all)
  progress(
    `${all.length} members in ${agents.length} process(es) started in ${round(startMs)} ms, all know all ${round(knownMs)} ms later; ${allOnline ? `all see all online after ${round(seeMs)} ms` : `not all see all online after ${round(seeMs)} ms`}: ${JSON.stringify(view)}`
  )
  return { all, owner, startMs, knownMs, allKnown, seeMs, allOnline, view, startFailures }
}

/** Rates per interval between consecutive samples of a cumulative counter, per second. */
function rates(samples, key, t0, t1) {
  const out = []
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]
    const b = samples[i]
    if (b.t < t0 || a.t > t1) continue
    const dt = (b.t - a.t) / 1000
    if (dt > 0.2) out.push((b[key] - a[key]) / dt)
  }
  return out
}

const totalRate = (samples, key, t0, t1) => {
  const inside = samples.filter(s => s.t >= t0 && s.t <= t1)
  if (inside.length < 2) return null
  const a = inside[0]
  const b = inside.at(-1)
  return round((b[key] - a[key]) / ((b.t - a.t) / 1000))
}

/**
 * Offline intervals for the churning members: `cycles` per member, one in each equal slot
 * of [0, windowMs), each lasting U(minMs, maxMs) (clipped to its slot).
 */
export function churnPlan(rand, ids, fraction, windowMs, cycles, minMs, maxMs) {
  const pool = [...ids]
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[pool[i], pool[j]] = [pool[j], pool[i]]
  }
  const churners = pool.slice(0, Math.round(ids.length * fraction))
  const slot = windowMs / cycles
  const plan = []
  for (const id of churners) {
    for (let c = 0; c < cycles; c++) {
      const d = Math.min(slot * 0.9, minMs + rand() * (maxMs - minMs))
      const start = c * slot + rand() * (slot - d)
      plan.push({ id, off: Math.round(start), on: Math.round(start + d) })
    }
  }
  return { churners, plan: plan.sort((a, b) => a.off - b.off) }
}

/**
 * The relay under load: `size` members (no listeners) in `memberProcs` agents, each sending
 * `perNode` DMs to random others spread over `spreadMs`, while `churnFraction` of them go
 * offline `cycles` times each; then every DM must arrive, exactly once.
 */
export async function runLoad({
  size,
  memberProcs,
  perNode,
  spreadMs,
  concurrency = 4,
  churnFraction = 1 / 3,
  cycles = 2,
  offlineMinMs = 3_000,
  offlineMaxMs = 12_000,
  seed = 1,
  waitMs = 120_000,
  ackWaitMs = 10_000,
  cpuProfDir,
  prefix = 'rl',
  live = {}
}) {
  return withRelayMesh({ memberProcs, prefix, cpuProfDir }, async ({ home, relayAgent, relayAddr, agents }) => {
    const { all, owner, startMs, knownMs, allKnown, seeMs, allOnline, view, startFailures } = await startMembers(
      home,
      agents,
      size,
      relayAddr,
      { seeTimeoutMs: Math.max(60_000, size * 2_400) }
    )
    live.phase = 'started'
    live.startup = { startMs: round(startMs), allKnowAllMs: round(knownMs), view }
    const rand = seeded(seed)
    const { churners, plan } = churnPlan(rand, all, churnFraction, spreadMs, cycles, offlineMinMs, offlineMaxMs)
    progress(`${churners.length} of ${all.length} members go offline ${cycles}× each over ${round(spreadMs / 1000)} s (seed ${seed})`)
    await relayAgent.call('relaySamples', { reset: true })
    const relayCpu0 = relayAgent.cpuMs()
    const cpu0 = agents.map(a => a.cpuMs())
    const tStart = now()
    const tStartPerf = performance.now()
    const churnErrors = []
    const since = () => performance.now() - tStartPerf
    // the churn: each member's planned stops and restarts in turn, each at its time (or at once when late)
    const byMember = new Map()
    for (const p of plan) byMember.set(p.id, [...(byMember.get(p.id) ?? []), p])
    const churn = Promise.all(
      [...byMember].map(async ([id, cycles]) => {
        const a = owner.get(id)
        for (const { off, on } of cycles) {
          try {
            await sleep(Math.max(0, off - since()))
            await a.call('mStop', { ids: [id] }, 60_000)
            await sleep(Math.max(0, on - since()))
            await a.call('mRestart', { ids: [id] }, 120_000)
          } catch (err) {
            churnErrors.push(err.message.split('\n')[0])
            progress(`churn of ${id.slice(-8)}: ${err.message.split('\n')[0]}`)
          }
        }
      })
    )
    let blastsDone = 0
    const blasts = Promise.all(
      agents.map(a =>
        a.call('mBlast', { perNode, targets: all, concurrency, spreadMs, seed }, spreadMs + 600_000).finally(() => {
          blastsDone++
        })
      )
    )
    live.phase = 'sending'
    const ticker = setInterval(() => {
      void Promise.all([...agents.map(a => a.call('mCounts', {}, 10_000)), relayAgent.call('relayReport', {}, 10_000)]).then(
        cs => {
          const rr = cs.pop()
          const s = cs.reduce(
            (x, c) => ({
              recv: x.recv + c.recv,
              held: x.held + c.held,
              delivered: x.delivered + c.delivered,
              running: x.running + c.running
            }),
            { recv: 0, held: 0, delivered: 0, running: 0 }
          )
          const t = round((performance.now() - tStartPerf) / 1000)
          live.progress = {
            atS: t,
            received: s.recv,
            heldStatuses: s.held,
            deliveredStatuses: s.delivered,
            membersRunning: s.running,
            sendersDone: blastsDone,
            relay: {
              mailbox: rr.report.mailbox,
              syncedWrites: rr.report.syncedWrites,
              connections: rr.report.connections,
              connectionsOpenedClosed: rr.connections,
              rssMB: rr.memoryMB.rss,
              heapUsedMB: rr.memoryMB.heapUsed,
              loopDelayMs: rr.loopDelayMs
            },
            membersRssMB: agents.map(a => a.mem()?.rss ?? null)
          }
          progress(
            `t+${t} s: ${s.recv} received, ${s.held} held, ${s.running}/${all.length} members running, ${blastsDone}/${agents.length} senders done; relay: ${rr.report.connections} connections (${rr.connections.opened} opened, ${rr.connections.closed} closed so far), holds ${rr.report.mailbox.messages}, rss ${rr.memoryMB.rss} MB, loop delay p99 ${round(rr.loopDelayMs.p99)} ms`
          )
        },
        () => {}
      )
    }, 10_000)
    let records
    let sendErrors = 0
    let lastError
    try {
      await churn
      // a member whose restarts all failed comes back now (its sends wait for it): the run ends with everyone online
      for (const a of agents) {
        const down = await a.call('mDown')
        if (down.length > 0) {
          progress(`${down.length} member(s) of ${a.label} still down: restarting`)
          await a.call('mRestart', { ids: down, attempts: 5 }, 300_000).catch(err => {
            churnErrors.push(err.message.split('\n')[0])
          })
        }
      }
      const out = (await blasts).flat()
      records = out.flatMap(b => b.records.map(r => [...r, b.peer]))
      sendErrors = out.reduce((n, b) => n + b.errors, 0)
      lastError = out.find(b => b.lastError != null)?.lastError
    } finally {
      clearInterval(ticker)
    }
    const tAllSent = now()
    live.phase = 'delivering'
    live.accepted = records.length
    progress(`${records.length} DMs accepted in ${round((tAllSent - tStart) / 1000)} s, every member back online; waiting for delivery`)
    // everyone is back: wait until every accepted DM was received, then (at most ackWaitMs
    // longer) until every sender has its `delivered` status
    let deadline = performance.now() + waitMs
    let counts
    let tAllReceived = null
    while (true) {
      counts = (await Promise.all(agents.map(a => a.call('mCounts', {}, 30_000)))).reduce(
        (s, c) => ({
          recv: s.recv + c.recv,
          dups: s.dups + c.dups,
          delivered: s.delivered + c.delivered,
          held: s.held + c.held,
          failed: s.failed + c.failed
        }),
        { recv: 0, dups: 0, delivered: 0, held: 0, failed: 0 }
      )
      if (tAllReceived == null && counts.recv >= records.length) {
        tAllReceived = now()
        deadline = Math.min(deadline, performance.now() + ackWaitMs)
      }
      if ((counts.recv >= records.length && counts.delivered >= records.length) || performance.now() > deadline) break
      await sleep(100)
    }
    const tEnd = now()
    const endView = await onlineView(agents, all)
    const relayCpu1 = relayAgent.cpuMs()
    const cpu1 = agents.map(a => a.cpuMs())
    const samples = await relayAgent.call('relaySamples', {})
    const relayReport = await relayAgent.call('relayReport')
    const relayMem = relayAgent.mem()
    const dumps = (await Promise.all(agents.map(a => a.call('mDump', {}, 60_000)))).flat()
    const memberMem = agents.map(a => a.mem())

    // who received what, when; which sends went through the mailbox (a `held` status)
    const recvAt = new Map()
    const recvBy = new Map()
    for (const d of dumps)
      d.recvIds.forEach((id, i) => {
        recvAt.set(id, d.recvTimes[i])
        recvBy.set(id, d.peer)
      })
    const heldIds = new Set()
    const deliveredIds = new Set()
    const offline = new Map()
    for (const d of dumps) {
      for (const [id] of d.held) heldIds.add(id)
      for (const [id] of d.delivered) deliveredIds.add(id)
      offline.set(d.peer, d.offline)
    }
    const wasOffline = (peer, t) => (offline.get(peer) ?? []).some(([a, b]) => t >= a && (b == null || t <= b))
    const heldAtMap = new Map()
    for (const d of dumps) for (const [id, t] of d.held) heldAtMap.set(id, t)
    const acceptToHeld = []
    const heldToReceived = []
    const latAll = []
    const latLive = []
    const latMailbox = []
    const latRecipientOnline = []
    const latRecipientOffline = []
    let received = 0
    let misrouted = 0
    let negative = 0
    let tLast = -Infinity
    // order: per sender → recipient pair, receipts in the sender's accept order
    const seqOf = new Map()
    const perSender = new Map()
    // the route each send took, by the reason read at the sender just before it (see agent.mjs route())
    const routes = {}
    for (const [id, , , , why] of records) {
      const r = (routes[why] ??= { sends: 0, mailbox: 0 })
      r.sends++
      if (heldIds.has(id)) r.mailbox++
    }
    for (const [id, to, , t1, , from] of records) {
      const n = perSender.get(from) ?? 0
      perSender.set(from, n + 1)
      seqOf.set(id, [from, n])
      const t = recvAt.get(id)
      if (t == null) continue
      received++
      if (recvBy.get(id) !== to) misrouted++
      tLast = Math.max(tLast, t)
      const l = t - t1
      if (l < 0) negative++
      latAll.push(l)
      ;(heldIds.has(id) ? latMailbox : latLive).push(l)
      const th = heldAtMap.get(id)
      if (th != null) {
        acceptToHeld.push(th - t1)
        heldToReceived.push(t - th)
      }
      ;(wasOffline(to, t1) ? latRecipientOffline : latRecipientOnline).push(l)
    }
    // what became of DMs never received: enough to tell a lost deposit from a lost live send
    const heldAt = new Map()
    const deliveredAt = new Map()
    for (const d of dumps) {
      for (const [id, t] of d.held) heldAt.set(id, t)
      for (const [id, t] of d.delivered) deliveredAt.set(id, t)
    }
    const rel = t => (t == null ? null : round(t - tStart))
    const missing = records.filter(([id]) => !recvAt.has(id))
    const unacked = records.filter(([id]) => recvAt.has(id) && !deliveredAt.has(id))
    const describe = ([id, to, , t1, why, from]) => ({
      route: why,
      id,
      from: from.slice(-8),
      to: to.slice(-8),
      acceptedAtMs: rel(t1),
      heldAtMs: rel(heldAt.get(id)),
      deliveredAtMs: rel(deliveredAt.get(id)),
      recipientOffline: (offline.get(to) ?? []).map(([a, b]) => [rel(a), rel(b)]),
      receivedAtMs: rel(recvAt.get(id)),
      senderOffline: (offline.get(from) ?? []).map(([a, b]) => [rel(a), rel(b)])
    })
    // a DM received after a later DM of the same sender: by the path each of the two took
    let outOfOrder = 0
    const outOfOrderPaths = {}
    const outOfOrderSample = []
    const pathOf = id => (heldIds.has(id) ? 'mailbox' : 'live')
    const acceptedAt = new Map(records.map(([id, , , t1]) => [id, t1]))
    for (const d of dumps) {
      const last = new Map()
      for (const id of d.recvIds) {
        const s = seqOf.get(id)
        if (s == null) continue
        const [from, n] = s
        const prev = last.get(from)
        if (prev != null && prev[0] > n) {
          outOfOrder++
          // did the sender stop (and restart) while the late DM waited in its outbox?
          const sent = acceptedAt.get(id)
          const restarted = (offline.get(from) ?? []).some(([a]) => a >= sent && a <= (recvAt.get(id) ?? Infinity))
          const k = `${pathOf(id)} after ${pathOf(prev[1])}${restarted ? ', sender restarted meanwhile' : ''}`
          outOfOrderPaths[k] = (outOfOrderPaths[k] ?? 0) + 1
          if (outOfOrderSample.length < 5)
            outOfOrderSample.push({
              late: { seq: n, ...describe(records.find(r => r[0] === id)) },
              overtakenBy: { seq: prev[0], ...describe(records.find(r => r[0] === prev[1])) }
            })
        } else {
          last.set(from, [n, id])
        }
      }
    }
    const failedStarts = dumps.flatMap(d => d.startFailures)
    const accepted = records.length
    const relayStats = relayReport.report
    const runS = (tEnd - tStart) / 1000
    const writesPerSec = rates(samples, 'syncedWrites', tStart, tEnd)
    const rss = samples.map(s => s.rssMB)
    const sumOver = k => dumps.reduce((n, d) => n + (d.mailbox[k] ?? 0), 0)
    const result = {
      // failed restarts are a finding (see churn), not a failed run: every member came back in the end
      ok: received === accepted && counts.dups === 0 && sendErrors === 0,
      target: '100 % delivered, 0 duplicates',
      layout: `${all.length} members (listen: [], all traffic through the relay) in ${agents.length} agent process(es), the relay alone in another`,
      seed,
      attempted: size * perNode,
      accepted,
      sendErrors,
      ...(lastError != null ? { lastError } : {}),
      received,
      deliveredPct: round(accepted === 0 ? 0 : (100 * received) / accepted, 3),
      /** `message:receive` more than once for one id (across restarts) */
      duplicatesAtRecipients: counts.dups,
      ...(missing.length > 0
        ? {
            missing: missing.length,
            missingAckedDelivered: missing.filter(([id]) => deliveredAt.has(id)).length,
            missingSample: missing.slice(0, 5).map(describe)
          }
        : {}),
      /** received, but the sender never saw a `delivered` status (a lost ack or receipt) */
      ...(unacked.length > 0
        ? {
            unacked: unacked.length,
            unackedHeld: unacked.filter(([id]) => heldAt.has(id)).length,
            unackedSample: unacked.slice(0, 5).map(describe)
          }
        : {}),
      /** received by another member than the one it was sent to */
      misrouted,
      /** per sender → recipient pair, received after a later send of the same sender (informative: the mailbox keeps one sender's order, live + mailbox paths may not) */
      outOfOrder,
      /** each out-of-order arrival as '<path of the late DM> after <path of the later DM that overtook it>' */
      outOfOrderPaths,
      ...(outOfOrderSample.length > 0 ? { outOfOrderSample } : {}),
      /** `delivered` status at the sender (direct ack or relay receipt) */
      ackedPct: round((100 * deliveredIds.size) / Math.max(1, accepted), 3),
      statusesAtSenders: { held: heldIds.size, delivered: deliveredIds.size, failed: counts.failed },
      churn: {
        members: churners.length,
        cyclesEach: cycles,
        offlineMs: `U(${offlineMinMs}, ${offlineMaxMs}) each`,
        stopsDone: dumps.reduce((n, d) => n + d.offline.length, 0),
        errors: churnErrors.length,
        /** member start() calls that threw during the churn (each retried, up to 3 times, then again at the end) */
        failedRestarts: failedStarts.length,
        ...(failedStarts.length > 0 ? { firstFailedRestart: failedStarts[0].slice(0, 200) } : {}),
        ...(churnErrors.length > 0 ? { firstError: churnErrors[0] } : {})
      },
      /** accepted (send resolved at the sender) → first message:receive at the recipient */
      latencyMs: {
        all: lat(latAll),
        /** no `held` status: delivered over a circuit through the relay */
        live: lat(latLive),
        /** a `held` status: deposited in the relay's mailbox (includes the time the recipient was away) */
        mailbox: lat(latMailbox),
        /** mailbox DMs, split: accepted → `held` status at the sender (waiting for a route, the deposit, its synced write, the `h` ack) … */
        mailboxAcceptedToHeld: lat(acceptToHeld),
        /** … and `held` at the sender → received (negative: the recipient had it before the sender heard `h`) */
        mailboxHeldToReceived: lat(heldToReceived),
        recipientOnlineAtSend: lat(latRecipientOnline),
        recipientOfflineAtSend: lat(latRecipientOffline)
      },
      /**
       * per reason read at the sender just before each send (DirectMessages.viaMailbox's
       * order): 'queued'/'held' = earlier DMs to that peer still wait in or on the mailbox,
       * 'connected'/'online' = direct, 'offline' = mailbox; `mailbox`: of those, how many got a `held` status
       */
      routes,
      negativeLatencies: negative,
      /** first send → every DM received */
      wallMs: round(tLast - tStart),
      /** first send → every member done sending and back online */
      sendPhaseMs: round(tAllSent - tStart),
      timedOut: received < accepted,
      relay: {
        syncedWritesPerSec: {
          mean: round((relayStats.syncedWrites - (samples[0]?.syncedWrites ?? 0)) / runS),
          peak: round(Math.max(0, ...writesPerSec)),
          median: round([...writesPerSec].sort((a, b) => a - b)[Math.floor(writesPerSec.length / 2)] ?? 0),
          perSecond: writesPerSec.map(x => Math.round(x))
        },
        depositsPerSec: {
          mean: totalRate(samples, 'deposits', tStart, tEnd),
          peak: round(Math.max(0, ...rates(samples, 'deposits', tStart, tEnd)))
        },
        syncedWrites: relayStats.syncedWrites,
        /** connections opened / closed at the relay during the run (members' stops and restarts account for 2 × stops) */
        connectionChurn:
          samples.length >= 2
            ? { opened: samples.at(-1).connOpened - samples[0].connOpened, closed: samples.at(-1).connClosed - samples[0].connClosed }
            : null,
        /** bytes the relay read / wrote through syscalls (sockets), per second over the run */
        ioKiBPerSec: { read: ioRate(samples, 'rchar', tStart, tEnd), written: ioRate(samples, 'wchar', tStart, tEnd) },
        mailbox: relayStats.mailbox,
        connections: relayStats.connections,
        reservations: relayStats.reservations,
        members: relayStats.members,
        peakRssMB: Math.max(relayMem?.hwm ?? 0, ...rss),
        rssMBAtEnd: relayMem?.rss ?? null,
        heapMB: relayReport.memoryMB,
        /** CPU time / wall time over the run: 1.0 = one core */
        cpuCores: relayCpu1 != null && relayCpu0 != null ? r3((relayCpu1 - relayCpu0) / (runS * 1000)) : null,
        eventLoopDelayMs: relayReport.loopDelayMs
      },
      members: {
        peakRssMBPerProcess: memberMem.map(m => m?.hwm ?? null),
        cpuCoresPerProcess: cpu1.map((c, i) => (c != null && cpu0[i] != null ? r3((c - cpu0[i]) / (runS * 1000)) : null)),
        mailboxClients: {
          deposited: sumOver('deposited'),
          held: sumOver('held'),
          received: sumOver('received'),
          receipts: sumOver('receipts'),
          refused: sumOver('refused')
        },
        outboxPendingAtEnd: dumps.reduce((n, d) => n + (d.outboxPending ?? 0), 0),
        connectionsPerMemberAtEnd: lat(dumps.map(d => d.connections ?? 0))
      },
      /** members started one process at a time; `allKnowAllMs`: every member knows every other; `onlineView`: how many others each member saw online when the sends began */
      startup: {
        startMs: round(startMs),
        failedStartsRetried: startFailures.length,
        ...(startFailures.length > 0 ? { firstStartFailure: startFailures[0].slice(0, 300) } : {}),
        allKnowAll: allKnown,
        allKnowAllMs: round(knownMs),
        allSeeAllOnline: allOnline,
        waitedMs: round(seeMs),
        onlineView: view
      },
      /** the same at the end, everyone back online (presence travels only through the relay's gossipsub mesh) */
      onlineViewAtEnd: endView,
      meetsTarget: received === accepted && accepted === size * perNode && counts.dups === 0
    }
    return result
  })
}

/**
 * Mailbox deposit throughput: `senders` members (one per agent) deposit DMs for one stopped
 * member; every deposit is acked (`h`, then `held` at the sender) only after the relay's
 * synced write. Two phases of `seconds` each:
 *  - viaSend: the whole path, `mail.send()` as fast as a window of un-held sends allows
 *    (sealing, the sender's synced outbox write, the deposit, the sender's `held` write);
 *  - rawDeposits: envelopes sealed beforehand handed straight to each sender's mailbox
 *    client, so the senders do little more than write frames: the relay's own ceiling.
 */
export async function runWrites({
  senders = 2,
  seconds = 10,
  window = 4096,
  maxOutstanding = 4096,
  bodySize = 64,
  rawPerSecond = 25_000,
  cpuProfDir,
  prefix = 'rw'
}) {
  // a flood for one recipient would hit the per-recipient quota (10,000 held): lift it here
  const limits = { perRecipient: 100_000_000, perRecipientBytes: 64 * 1024 ** 3, totalBytes: 64 * 1024 ** 3 }
  return withRelayMesh({ memberProcs: senders, prefix, limits, cpuProfDir }, async ({ home, relayAgent, relayAddr, agents }) => {
    const [recipient] = await agents[0].call('mStart', { home, mesh: 'bench', names: ['away'], relays: [relayAddr], listen: [] }, 60_000)
    const ids = []
    for (const [i, a] of agents.entries())
      ids.push((await a.call('mStart', { home, mesh: 'bench', names: [`flood${i}`], relays: [relayAddr], listen: [] }, 60_000))[0].peerId)
    const everyone = [recipient.peerId, ...ids]
    await Promise.all(agents.map(a => a.call('mWaitSee', { ids: everyone, timeoutMs: 30_000 }, 40_000)))
    await agents[0].call('mStop', { ids: [recipient.peerId] })
    await Promise.all(agents.map(a => a.call('mWaitSee', { ids: [recipient.peerId], online: false, timeoutMs: 30_000 }, 40_000)))
    // warm-up: one second of the same
    await Promise.all(
      agents.map((a, i) => a.call('mFlood', { from: [ids[i]], to: recipient.peerId, seconds: 1, window, maxOutstanding, bodySize }, 60_000))
    )

    /** relay counters, CPU and memory around `run()` (which returns its window in ms) */
    const measure = async run => {
      await relayAgent.call('relaySamples', { reset: true })
      const r0 = (await relayAgent.call('relayReport')).report
      const relayCpu0 = relayAgent.cpuMs()
      const cpu0 = agents.map(a => a.cpuMs())
      const t0 = now()
      const out = await run()
      const t1 = now()
      const relayCpu1 = relayAgent.cpuMs()
      const cpu1 = agents.map(a => a.cpuMs())
      const samples = await relayAgent.call('relaySamples', {})
      const rr = await relayAgent.call('relayReport')
      const relayMem = relayAgent.mem()
      const wallS = (t1 - t0) / 1000
      // the window proper starts when the senders start (after any sealing) and lasts windowMs
      const tA = out.tStart ?? t0
      const tW = tA + out.windowMs
      const storedPerSec = rates(samples, 'stored', tA, tW)
      const stored = rr.report.mailbox.stored - r0.mailbox.stored
      const cpu = relayCpu0 != null && relayCpu1 != null ? relayCpu1 - relayCpu0 : null
      const inW = samples.filter(s => s.t >= tA && s.t <= tW + 1000)
      const wCpu = inW.length >= 2 ? (inW.at(-1).cpuMs - inW[0].cpuMs) / (inW.at(-1).t - inW[0].t) : null
      const wStored = inW.length >= 2 ? inW.at(-1).stored - inW[0].stored : 0
      return {
        out,
        /** the relay's `stored` counter: a deposit's synced write done (its `h` ack queued) */
        relayDurablePerSec: {
          mean: totalRate(samples, 'stored', tA, tW),
          median: round(median(storedPerSec)),
          peak: round(Math.max(0, ...storedPerSec)),
          perSecond: storedPerSec.map(x => Math.round(x))
        },
        /** the relay's group-commit writes (one per deposit, ack or receipt batch), per second */
        relaySyncedWritesPerSec: {
          median: round(median(rates(samples, 'syncedWrites', tA, tW))),
          peak: round(Math.max(0, ...rates(samples, 'syncedWrites', tA, tW)))
        },
        deposits: rr.report.mailbox.deposits - r0.mailbox.deposits,
        stored,
        relay: {
          /** the relay's CPU time / wall time in the window (sampled in its process): 1.0 = one core */
          cpuCoresInWindow: wCpu != null ? r3(wCpu) : null,
          /** over the whole phase (window and drain; the senders' sealing too) */
          cpuCores: cpu != null ? r3(cpu / (wallS * 1000)) : null,
          /** the relay's CPU per deposit made durable, whole phase: 1e6 / this = deposits/s one core could make durable */
          cpuUsPerDurableDeposit: cpu != null ? round((1000 * cpu) / Math.max(1, stored)) : null,
          cpuUsPerDurableDepositInWindow: wCpu != null && wStored > 0 ? round((1000 * wCpu * (inW.at(-1).t - inW[0].t)) / wStored) : null,
          peakRssMB: Math.max(relayMem?.hwm ?? 0, ...samples.map(s => s.rssMB)),
          heapMB: rr.memoryMB,
          heldAtEnd: rr.report.mailbox.messages,
          readKiBPerSec: ioRate(samples, 'rchar', tA, tW),
          eventLoopDelayMs: rr.loopDelayMs
        },
        senders: {
          cpuCores: cpu1.map((c, i) => (c != null && cpu0[i] != null ? r3((c - cpu0[i]) / (wallS * 1000)) : null)),
          peakRssMB: agents.map(a => a.mem()?.hwm ?? null)
        }
      }
    }

    const viaSend = await measure(async () => {
      const per = (
        await Promise.all(
          agents.map((a, i) =>
            a.call('mFlood', { from: [ids[i]], to: recipient.peerId, seconds, window, maxOutstanding, bodySize }, (seconds + 60) * 1000)
          )
        )
      ).flat()
      return { per, tStart: Math.min(...per.map(p => p.tStart)), windowMs: Math.max(...per.map(p => p.windowMs)) }
    })
    const per = viaSend.out.per
    const windowS = viaSend.out.windowMs / 1000
    const heldPerSecSum = Array.from({ length: seconds }, (_, s) => per.reduce((n, p) => n + (p.heldPerSec[s] ?? 0), 0))
    const heldInWindow = per.reduce((n, p) => n + p.heldInWindow, 0)
    progress(
      `via send(): ${viaSend.relayDurablePerSec.mean} durable deposits/s at the relay, ${round(heldInWindow / windowS)} held/s at the senders`
    )

    const count = Math.ceil((rawPerSecond * seconds) / senders)
    const raw = await measure(async () => {
      const per = await Promise.all(
        agents.map((a, i) =>
          a.call('mRawDeposit', { from: ids[i], to: recipient.peerId, count, seconds, bodySize }, (seconds + 120) * 1000)
        )
      )
      return { per, tStart: Math.min(...per.map(p => p.tStart)), windowMs: Math.max(...per.map(p => p.windowMs)) }
    })
    const rawHeld = Array.from({ length: seconds }, (_, s) => raw.out.per.reduce((n, p) => n + (p.perSec[s] ?? 0), 0))
    progress(`raw deposits: ${raw.relayDurablePerSec.mean} durable deposits/s at the relay`)
    const { out: _v, ...viaSendRest } = viaSend
    const { out: _r, ...rawRest } = raw
    const best = Math.max(viaSend.relayDurablePerSec.mean ?? 0, raw.relayDurablePerSec.mean ?? 0)
    return {
      ok: per.every(p => p.drained && p.errors === 0) && raw.out.per.every(p => p.held > 0),
      target: '≥ 20,000 deposits made durable per second at the relay (each acked after its synced write)',
      layout: `${senders} sender(s), one per agent process, depositing for one stopped member; the relay alone in another process; per-recipient quota lifted`,
      seconds,
      viaSend: {
        what: `mail.send() as fast as ≤ ${window} un-held sends per sender (≤ ${maxOutstanding} not yet accepted) allow`,
        ...viaSendRest,
        /** `held` statuses at the senders, summed, per second of the window */
        heldAtSendersPerSec: {
          mean: round(heldInWindow / windowS),
          median: median(heldPerSecSum),
          max: Math.max(...heldPerSecSum),
          perSecond: heldPerSecSum
        },
        acceptedAtSendersPerSec: round(per.reduce((n, p) => n + p.accepted, 0) / windowS),
        held: per.reduce((n, p) => n + p.held, 0),
        drained: per.every(p => p.drained),
        sendErrors: per.reduce((n, p) => n + p.errors, 0),
        ...(per.find(p => p.lastError != null) != null ? { lastError: per.find(p => p.lastError != null).lastError } : {})
      },
      rawDeposits: {
        what: `${count} envelopes per sender sealed beforehand (${raw.out.per.map(p => `${p.sealedPerSec}/s`).join(', ')}), handed to the mailbox client at once (its window: 2048 unacked)`,
        ...rawRest,
        /** `h` acks at the senders' mailbox clients, summed, per second */
        heldAtSendersPerSec: {
          mean: round(rawHeld.reduce((a, b) => a + b, 0) / (raw.out.windowMs / 1000)),
          median: median(rawHeld),
          max: Math.max(...rawHeld),
          perSecond: rawHeld
        },
        allHeldInWindow: raw.out.per.every(p => p.allHeld)
      },
      meetsTarget: best >= 20_000
    }
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? null : s[Math.floor((s.length - 1) / 2)]
}

/** KiB/s of a cumulative byte counter between t0 and t1 */
function ioRate(samples, key, t0, t1) {
  const r = totalRate(
    samples.filter(s => s[key] != null),
    key,
    t0,
    t1
  )
  return r == null ? null : round(r / 1024)
}
