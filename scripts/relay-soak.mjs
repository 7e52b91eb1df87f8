#!/usr/bin/env node
// The relay soak (not part of `npm run bench`): bench/relay.mjs's relayLoad scaled up.
// RELAY_SOAK_MEMBERS (100) members, all with `listen: []` so every DM goes through the relay,
// in RELAY_SOAK_PROCS (5) agent processes, the relay alone in another; each member sends
// RELAY_SOAK_PER_NODE (1000) DMs to random members over RELAY_SOAK_SPREAD_S (300) s, while a
// third of them go offline RELAY_SOAK_CYCLES (2) times each at seeded random times (BENCH_SEED)
// and come back with the same session. Then every accepted DM must arrive exactly once.
// Prints ONE JSON object on stdout (progress on stderr); bounded by RELAY_SOAK_TIMEOUT_S
// (1200): past it, the JSON says how far the run got (phase, counts, relay memory).
// Diagnostics (stderr, agents in bench/lib/agent.mjs): BENCH_DIAG_MS=10000 logs every 10 s
// each running member without a relay connection (its dial in flight, failures, last dial
// error), why member↔relay connections closed, and the relay's gossip rate and event-loop
// delay; BENCH_SIGPROF=<dir> makes SIGUSR2 start/stop a CPU profile of an agent;
// BENCH_PROF_RELAY=<file>,<startS>,<lengthS> profiles the relay over that window.
//   node scripts/relay-soak.mjs
import { loadavg } from 'node:os'
import { emit, guard, progress, round } from '../bench/lib/harness.mjs'
import { runLoad } from '../bench/lib/relay.mjs'

const env = (k, d) => Number(process.env[k] ?? d)
const live = { phase: 'starting' }
const t0 = performance.now()
const load0 = loadavg().map(x => round(x, 2))
const partial = () => ({
  soak: { ok: false, howFar: { ...live, elapsedS: round((performance.now() - t0) / 1000) } },
  loadavg1m5m15m: { before: load0, after: loadavg().map(x => round(x, 2)) }
})
guard(env('RELAY_SOAK_TIMEOUT_S', 1200) * 1000, partial)

const soak = await runLoad({
  size: env('RELAY_SOAK_MEMBERS', 100),
  memberProcs: env('RELAY_SOAK_PROCS', 5),
  perNode: env('RELAY_SOAK_PER_NODE', 1000),
  spreadMs: env('RELAY_SOAK_SPREAD_S', 300) * 1000,
  concurrency: 4,
  churnFraction: 1 / 3,
  cycles: env('RELAY_SOAK_CYCLES', 2),
  offlineMinMs: 5_000,
  offlineMaxMs: 30_000,
  seed: env('BENCH_SEED', 1),
  waitMs: 300_000,
  ackWaitMs: 30_000,
  prefix: 'soak',
  live
}).catch(err => {
  progress(`soak failed: ${err.stack ?? err}`)
  return { ok: false, error: err.message, howFar: live }
})
emit({ soak, elapsedS: round((performance.now() - t0) / 1000), loadavg1m5m15m: { before: load0, after: loadavg().map(x => round(x, 2)) } })
process.exit(0)
