// Relay benchmarks, one JSON object on stdout, progress on stderr. The relay runs alone in
// one agent process (lib/agent.mjs), members in others (lib/relay.mjs has the scenarios):
//  1. relayLoad: BENCH_RELAY_MEMBERS (50) members in BENCH_RELAY_PROCS (5) processes, every one
//     with `listen: []` so every DM goes through the relay (a circuit when the recipient is
//     online, the mailbox when not); each sends BENCH_RELAY_PER_NODE (200) DMs to seeded-random
//     members, spread over BENCH_RELAY_SPREAD_S (30) s, ≤ 4 sends not yet accepted each. A third
//     of the members go offline BENCH_RELAY_CYCLES (1) time(s) each at seeded random times
//     (BENCH_SEED) for 3–12 s (stopped, then started again with the same session: same
//     identity, same inbox; a member stopped does not send). Then everyone is online and every
//     accepted DM must arrive exactly once. Target: 100 % delivered, 0 duplicates. Reports
//     latency accepted → received (live vs. mailbox, recipient online vs. offline at send),
//     the route each send took, the relay's synced writes/s (mean, peak), CPU, peak RSS,
//     connection churn and mailbox counters, and the members' view of who is online.
//  2. relayWrites: BENCH_RELAY_SENDERS (2) senders, one per process, deposit DMs for a stopped
//     member for BENCH_RELAY_WRITES_S (10) s, each acked after the relay's synced write:
//     `viaSend` through mail.send() (the whole path), `rawDeposits` with envelopes sealed
//     beforehand handed straight to the mailbox clients (the relay's own ceiling). Target
//     ≥ 20,000 durable deposits/s at the relay; reports its CPU per deposit.
// BENCH_QUICK=1: 20 members in 2 processes × 100 DMs over 6 s, writes for 3 s (each env above
// still wins). BENCH_RELAY_ONLY=load,writes runs a subset; BENCH_CPU_PROF=<dir> runs every agent (the
// relay's too) under --cpu-prof (`node bench/lib/cpuprof.mjs <dir> --match relay --inclusive`).
// scripts/relay-soak.mjs runs relayLoad scaled to 100 members × 1,000 DMs.
import { emit, guard, section } from './lib/harness.mjs'
import { runLoad, runWrites } from './lib/relay.mjs'

const quick = process.env.BENCH_QUICK === '1'
const env = (k, d, q = d) => Number(process.env[k] ?? (quick ? q : d))
const result = {}
guard(Number(process.env.BENCH_TIMEOUT_MS ?? 450_000) - 20_000, () => result)

const only = (process.env.BENCH_RELAY_ONLY ?? 'load,writes').split(',')
if (only.includes('load')) {
  result.relayLoad = await section('relay load', () =>
    runLoad({
      size: env('BENCH_RELAY_MEMBERS', 50, 20),
      memberProcs: env('BENCH_RELAY_PROCS', 5, 2),
      perNode: env('BENCH_RELAY_PER_NODE', 200, 100),
      spreadMs: env('BENCH_RELAY_SPREAD_S', 30, 6) * 1000,
      concurrency: 4,
      churnFraction: 1 / 3,
      cycles: env('BENCH_RELAY_CYCLES', 1),
      offlineMinMs: 3_000,
      offlineMaxMs: 12_000,
      seed: env('BENCH_SEED', 1),
      waitMs: 90_000
    })
  )
}
if (only.includes('writes')) {
  result.relayWrites = await section('relay mailbox writes', () =>
    runWrites({
      senders: env('BENCH_RELAY_SENDERS', 2),
      seconds: env('BENCH_RELAY_WRITES_S', 10, 3)
    })
  )
}
result.ok = ['relayLoad', 'relayWrites'].every(k => result[k]?.ok !== false)
emit(result)
process.exit(0)
