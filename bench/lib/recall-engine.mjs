// One recall engine at one size, in its own process (bench/recall.mjs runs it):
// `node --expose-gc recall-engine.mjs '{"engine":…,"size":…}'` → one JSON line on stdout.
//  - engine "shared": the node package's SharedMemory (whatever engine packages/node/dist has,
//    or CLAUDEMESH_BENCH_NODE_DIST), end to end on a LevelDB session store in a temp dir: notes
//    written into a Replica in signed batches, the replica's snapshot, a first start that builds
//    the index and saves it as a clean stop does; then this file again in a fresh process with
//    `dir` (the cold start: load, then the index until `ready`, then the query mix), with the
//    young generation held at its initial size until ready, as the CLI's node starts.
//    BENCH_RECALL_DIR=<dir> (probing) prepares the store there once and reuses it.
//  - any other engine: a candidate from recall-candidates.mjs over the same notes, without a
//    replica (build time, query mix, memory added by the index).
// Latency: wall ms per query (`ms`) and the process CPU ms it used (`cpuMs`), the 5 slowest.
// Memory: RSS and heap after a full GC, with the notes loaded and before the index (`baseMB`),
// and with the index (`rssMB`); `indexMB` is the difference.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { emit, guard, progress, removeDir, round, tempDir } from './harness.mjs'
import { candidates } from './recall-candidates.mjs'
import { loadPure, MESH_ID, noteGenerator, pct, queryGenerator, SEAL_KEY, vocabulary } from './state-common.mjs'

const opts = { engine: 'shared', size: 10_000, queries: 1000, warmup: 100, seed: 42, ...JSON.parse(process.argv[2] ?? '{}') }
const result = { ok: true, engine: opts.engine, size: opts.size }
guard(opts.boundMs ?? 170_000, () => result)

const words = vocabulary(1)
const mb = b => round(b / 2 ** 20)
function memory() {
  globalThis.gc?.()
  globalThis.gc?.()
  const m = process.memoryUsage()
  return {
    rssMB: mb(m.rss),
    ...rssParts(),
    heapMB: mb(m.heapUsed),
    heapTotalMB: mb(m.heapTotal),
    externalMB: mb(m.external + m.arrayBuffers)
  }
}

/** RSS split (Linux): anonymous (heap, malloc) and file-backed (mapped files: LevelDB tables, code). */
function rssParts() {
  try {
    const t = readFileSync('/proc/self/status', 'utf8')
    const kb = k => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? NaN)
    return { rssAnonMB: round(kb('RssAnon') / 1024), rssFileMB: round(kb('RssFile') / 1024) }
  } catch {
    return {}
  }
}

/** The seeded notes: id (16 hex chars), content, tags, author (one of 8 peers). */
function notes(n) {
  const gen = noteGenerator(opts.seed, words)
  const out = []
  for (let i = 0; i < n; i++)
    out.push({ id: (0x1000000000000n + BigInt(i) * 7919n).toString(16).padStart(16, '0'), ...gen(), author: `peer${i % 8}` })
  return out
}

/** The query mix: warm-up, then `queries` timed ones, each awaited; ms per kind. */
async function queryMix(recall) {
  const warm = queryGenerator(opts.seed + 1000, words)
  for (let i = 0; i < opts.warmup; i++) await recall(warm().query)
  const gen = queryGenerator(opts.seed + 1, words)
  const all = []
  const cpu = []
  const slowest = []
  const byKind = { exact: [], prefix: [], typo: [] }
  let hits = 0
  let empty = 0
  for (let i = 0; i < opts.queries; i++) {
    const { query, kind } = gen()
    const c = process.cpuUsage()
    const t = performance.now()
    const r = await recall(query)
    const d = performance.now() - t
    const u = process.cpuUsage(c)
    cpu.push((u.user + u.system) / 1000)
    slowest.push({ query, ms: round(d, 3), cpuMs: round((u.user + u.system) / 1000, 3) })
    all.push(d)
    byKind[kind].push(d)
    hits += r.length
    if (r.length === 0) empty++
  }
  slowest.sort((a, b) => b.ms - a.ms)
  // process CPU time (all threads, GC included): on a loaded machine wall time also counts waiting for a core
  return {
    ms: pct(all),
    cpuMs: pct(cpu),
    slowest: slowest.slice(0, 5),
    byKind: Object.fromEntries(Object.entries(byKind).map(([k, xs]) => [k, pct(xs)])),
    meanResults: round(hits / opts.queries, 2),
    emptyResults: empty
  }
}

/** The same queries with an author filter and with a tag filter (fewer: they are the rarer case). */
async function filtered(recall) {
  const gen = queryGenerator(opts.seed + 2, words)
  const ms = []
  for (let i = 0; i < Math.min(200, opts.queries); i++) {
    const { query } = gen()
    const f = i % 2 === 0 ? { author: 'peer3' } : { tags: ['bug'] }
    const t = performance.now()
    await recall(query, f)
    ms.push(performance.now() - t)
  }
  return pct(ms)
}

const cpuMs = since => {
  const u = process.cpuUsage(since)
  return round((u.user + u.system) / 1000)
}

/** A session store as a node opens it: the LevelLog on its `crdt` sublevel, and the recall index snapshot beside it. */
async function openShared(lib, dir) {
  const db = await lib.openStore(dir)
  const crdt = lib.sublevel(db, 'crdt')
  const log = new lib.LevelLog(crdt, new lib.GroupCommit(db), lib.snapshotsBeside(dir))
  await log.open()
  return { db, log, indexStore: lib.indexStore(crdt, dir) }
}

/**
 * The store a node would leave after writing `size` notes and a clean stop: notes in signed
 * batches of 500 (an update is at most 256 KiB), the replica's snapshot, and a first start
 * that builds the recall index and saves it (what a node with this version does at stop).
 */
async function prepare(lib, key, id, dir) {
  const { db, log, indexStore } = await openShared(lib, dir)
  const writer = new lib.Replica(MESH_ID, key, SEAL_KEY, 1, log, id)
  await writer.load()
  const all = notes(opts.size)
  let t = performance.now()
  for (let b = 0; b < all.length; b += 500) {
    await writer.change(doc => {
      const map = doc.getMap('memory')
      for (const n of all.slice(b, b + 500))
        map.set(n.id, { content: n.content, tags: n.tags, author: n.author, createdAt: b, by: id, at: b })
    })
  }
  await writer.snapshot()
  progress(`shared ${opts.size}: written in ${round(performance.now() - t)} ms`)
  t = performance.now()
  const first = new lib.Replica(MESH_ID, key, SEAL_KEY, 2, log, id)
  await first.load()
  const mem = new lib.SharedMemory(first, () => {}, { indexStore })
  await mem.ready
  const firstStartMs = round(performance.now() - t)
  await first.snapshot()
  if (typeof mem.persist === 'function') await mem.persist()
  // as a clean stop does (a build without it leaves the log to replay); BENCH_RECALL_NO_FLUSH=1 (probing): leave it
  if (process.env.BENCH_RECALL_NO_FLUSH !== '1') await lib.flushWrites?.(db)
  await db.close()
  return { firstStartMs, indexStart: mem.indexStart }
}

/** A cold start of a node over `dir` (a fresh process): load, then the index until ready, then the query mix. */
async function serve(lib, key, id, dir) {
  // wall ms, and the process CPU ms of the same spans (on a loaded machine wall time counts waiting for a core)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const { log, indexStore } = await openShared(lib, dir)
  const replica = new lib.Replica(MESH_ID, key, SEAL_KEY, 3, log, id)
  // as createShared does: a build that reads the index snapshot beside the replica's load starts it first
  const preloaded = lib.indexSnapshotVersion >= 2 ? indexStore?.load() : undefined
  preloaded?.catch(() => {})
  await replica.load()
  const tLoad = performance.now()
  const cLoad = cpuMs(c0)
  const base = memory()
  const c1 = process.cpuUsage()
  const t1 = performance.now()
  const mem = new lib.SharedMemory(replica, () => {}, { indexStore, ...(preloaded != null ? { preloaded } : {}) })
  const tConstruct = performance.now()
  const cConstruct = cpuMs(c1)
  await mem.ready
  const tReady = performance.now()
  const cReady = cpuMs(c1)
  if (hold) setFlagsFromString('--semi-space-growth-factor=2')
  if (mem.size !== opts.size) throw new Error(`indexed ${mem.size} notes, expected ${opts.size}`)
  const coldStart = {
    replicaLoadMs: round(tLoad - t0),
    constructMs: round(tConstruct - t1),
    indexReadyMs: round(tReady - t1),
    toServeMs: round(tLoad - t0 + tConstruct - t1),
    toRecallMs: round(tLoad - t0 + tReady - t1),
    cpu: { replicaLoadMs: cLoad, indexReadyMs: cReady, toServeMs: round(cLoad + cConstruct), toRecallMs: round(cLoad + cReady) },
    index: mem.indexStart ?? 'built',
    youngGeneration: hold ? 'held' : 'grows'
  }
  const recall = (q, f) => mem.recall(q, f)
  const mix = await queryMix(recall)
  const filters = await filtered(recall)
  const m = memory()
  return { coldStart, ...mix, filteredMs: filters, baseMB: base, memory: m, indexMB: round(m.rssMB - base.rssMB) }
}

/**
 * The cold start holds the young generation at its initial size from before the node package
 * loads until the index is ready, and lets it grow again after, as the CLI's node does
 * (packages/node/src/heap.ts nodeStarting, nodeStarted; not its old generation bound); BENCH_RECALL_YOUNG=grow: never held.
 */
const hold = opts.dir != null && process.env.BENCH_RECALL_YOUNG !== 'grow'

async function shared() {
  if (hold) setFlagsFromString('--semi-space-growth-factor=1')
  const lib = await loadPure()
  const key = await lib.keyFromSeed(1)
  const id = lib.peerIdStringOfRaw(key.publicKey.raw)
  if (opts.dir != null) return await serve(lib, key, id, opts.dir)
  // BENCH_RECALL_DIR (probing only): prepare the store there once and keep it
  const keep = process.env.BENCH_RECALL_DIR
  // a temp store in a directory of its own: its snapshots directory is beside it
  const dir = keep ?? join(tempDir('recall-bench-'), 'db')
  try {
    const first = keep != null && existsSync(join(keep, 'CURRENT')) ? { reused: keep } : await prepare(lib, key, id, dir)
    // the cold start in a process of its own: its memory is the node's, not the writer's
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), JSON.stringify({ ...opts, dir })], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      stdio: ['ignore', 'pipe', 'inherit']
    })
    const r = JSON.parse(out.trim().split('\n').pop())
    if (r.ok === false) throw new Error(r.error)
    delete r.ok
    delete r.engine
    delete r.size
    return { firstStart: first, ...r }
  } finally {
    if (keep == null) removeDir(dirname(dir))
  }
}

async function candidate(make) {
  const all = notes(opts.size)
  const base = memory()
  const t = performance.now()
  const engine = await make(all)
  const buildMs = round(performance.now() - t)
  const byId = new Map(all.map(n => [n.id, n]))
  const recall = (q, f = {}) => engine.search(q, f, byId)
  const mix = await queryMix(recall)
  const filters = await filtered(recall)
  const m = memory()
  return { buildMs, ...mix, filteredMs: filters, baseMB: base, memory: m, indexMB: round(m.rssMB - base.rssMB), ...(engine.info?.() ?? {}) }
}

try {
  const make = candidates[opts.engine]
  if (opts.engine !== 'shared' && make == null) throw new Error(`no engine ${opts.engine}`)
  const r = opts.engine === 'shared' ? await shared() : await candidate(await make())
  Object.assign(result, r)
  progress(`${opts.engine} ${opts.size}: p50 ${r.ms.p50} ms, p99 ${r.ms.p99} ms, rss ${r.memory.rssMB} MB`)
} catch (err) {
  result.ok = false
  result.error = err.message
}
emit(result)
process.exit(0)
