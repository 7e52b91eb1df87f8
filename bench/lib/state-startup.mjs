// Start-up of shared state and memory from an existing LevelDB, in a fresh process, as
// node.ts startShared does it: open the store, open the LevelLog, `replica.load()` (snapshot
// plus the envelopes after it), then SharedState and SharedMemory (the recall index is built
// in the constructor). `node state-startup.mjs '{"dir":…,"expect":100000}'` → one JSON line.
import { performance } from 'node:perf_hooks'
import { emit, guard, round } from './harness.mjs'

const { dir, expect } = JSON.parse(process.argv[2])
guard(110_000)
const t0 = performance.now()
const { loadPure } = await import('./state-common.mjs')
const lib = await loadPure()
const tImported = performance.now()

const db = await lib.openStore(dir)
const tOpen = performance.now()
const commit = new lib.GroupCommit(db)
const log = new lib.LevelLog(lib.sublevel(db, 'crdt'), commit, lib.snapshotsBeside(dir))
await log.open()
const tLogOpen = performance.now()
const key = await lib.keyFromSeed(2)
const id = lib.peerIdStringOfRaw(key.publicKey.raw)
const replica = new lib.Replica('00112233aabbccdd', key, new Uint8Array(32).fill(7), 2, log, id)
await replica.load()
const tLoad = performance.now()
const state = new lib.SharedState(replica, () => {})
const tState = performance.now()
const memory = new lib.SharedMemory(replica, () => {})
const tIndex = performance.now()
// the recall index builds in slices after start-up; recall waits for it
await memory.ready
const tReady = performance.now()
const notes = memory.size
const snap = await log.snapshot()
const out = {
  ok: expect == null || notes === expect,
  notes,
  stateKeys: state.size,
  arrivals: log.arrivals(),
  snapshotArrival: snap?.arrival ?? null,
  /** open + log open + load + SharedState + SharedMemory (not the module imports): the node can serve */
  totalMs: round(tIndex - tImported),
  /** …and until the recall index holds every note */
  recallReadyMs: round(tReady - tImported),
  importMs: round(tImported - t0),
  openMs: round(tOpen - tImported),
  logOpenMs: round(tLogOpen - tOpen),
  loadMs: round(tLoad - tLogOpen),
  stateMs: round(tState - tLoad),
  indexMs: round(tIndex - tState),
  rssMB: round(process.memoryUsage().rss / 2 ** 20)
}
if (!out.ok) out.error = `expected ${expect} notes, found ${notes}`
await db.close()
emit(out)
process.exit(0)
