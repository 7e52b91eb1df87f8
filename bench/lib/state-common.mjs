// Shared helpers of the shared-state / memory benchmarks (bench/state.mjs and its sections):
// loading the built node package, a seeded RNG, a realistic note and query generator,
// percentiles, pure replicas (no network), and running one section in a bounded child.
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { progress, root, round, spawnTracked, stopChild } from './harness.mjs'
import { importFrom } from './resolve.mjs'

/** the node package under test; CLAUDEMESH_BENCH_NODE_DIST swaps in another build of its dist/ */
export const dist = process.env.CLAUDEMESH_BENCH_NODE_DIST ?? join(root, 'packages/node/dist')
const distUrl = p => pathToFileURL(join(dist, p)).href

/** polyfill first, then the package entry point (createMesh, createMeshNode…). */
export async function loadNode() {
  await import(distUrl('polyfill.js'))
  return import(distUrl('index.js'))
}

/** What pure replicas need: Replica, logs, SharedState, SharedMemory, the store, keys. */
export async function loadPure() {
  await import(distUrl('polyfill.js'))
  const state = await import(distUrl('state/index.js'))
  const memory = await import(distUrl('memory/index.js'))
  const store = await import(distUrl('store/index.js'))
  const session = await import(distUrl('session-store.js'))
  const commit = await import(distUrl('store/commit.js'))
  const keys = await import(distUrl('identity/keys.js'))
  const home = await import(distUrl('home.js'))
  // the recall index snapshot (issue 12 item 3); an older build has none
  const snapshot = await import(distUrl('memory/index-snapshot.js')).catch(() => ({}))
  const crypto = await importFrom(dirname(dist), '@libp2p/crypto/keys')
  return {
    ...state,
    SharedMemory: memory.SharedMemory,
    /** the directory of a store's snapshot files (undefined for a build that keeps them in LevelDB) */
    snapshotsBeside: dir => home.snapshotsBeside?.(dir),
    /** the recall index snapshot's store for the store in `dir`, as createShared makes it (an older build has none) */
    indexStore: (crdt, dir) =>
      snapshot.fileIndexStore != null ? snapshot.fileIndexStore(home.snapshotsBeside(dir), crdt) : snapshot.levelIndexStore?.(crdt),
    /** version 2 on: the node reads the index snapshot while the replica loads (SharedMemory's `preloaded`) */
    indexSnapshotVersion: snapshot.INDEX_SNAPSHOT_VERSION ?? 0,
    /** a session's store, as a node opens it */
    openStore: async dir => store.openStore(dir, session.SESSION_LAYOUT),
    sublevel: store.sublevel,
    flushWrites: store.flushWrites,
    GroupCommit: commit.GroupCommit,
    peerIdStringOfRaw: keys.peerIdStringOfRaw,
    /** a deterministic Ed25519 key from a number (same seed, same key) */
    keyFromSeed: n => {
      const seed = new Uint8Array(32)
      new DataView(seed.buffer).setUint32(0, n >>> 0)
      seed[31] = 0x5e
      return crypto.generateKeyPairFromSeed('Ed25519', seed)
    }
  }
}

export const MESH_ID = '00112233aabbccdd'
export const SEAL_KEY = new Uint8Array(32).fill(7)

/**
 * A replica with SharedState and SharedMemory on `log` (MemoryLog or LevelLog), as the
 * convergence tests build them: `publish` gets every local change's signed envelope.
 */
export async function pureReplica(lib, { key, log, inc = 1, publish = () => {} }) {
  const id = lib.peerIdStringOfRaw(key.publicKey.raw)
  const replica = new lib.Replica(MESH_ID, key, SEAL_KEY, inc, log, id)
  await replica.load()
  const state = new lib.SharedState(replica, publish)
  const memory = new lib.SharedMemory(replica, publish)
  return { id, key, log, replica, state, memory }
}

/** mulberry32: a small seeded generator in [0, 1) */
export function rng(seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Nearest-rank percentiles and mean of a list of numbers (ms), at µs resolution. */
export function pct(xs, digits = 3) {
  if (xs.length === 0) return { n: 0 }
  const s = Float64Array.from(xs).sort()
  const at = q => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
  let sum = 0
  for (const x of s) sum += x
  return {
    n: s.length,
    p50: round(at(0.5), digits),
    p90: round(at(0.9), digits),
    p99: round(at(0.99), digits),
    max: round(s[s.length - 1], digits),
    mean: round(sum / s.length, digits)
  }
}

// ---- realistic short notes -----------------------------------------------------------------

// what coding agents write to each other: function words, then shared development vocabulary
const FUNCTION_WORDS = (
  'the a to of and in is for on that it with this be as we not at by from or are was but if ' +
  'so when all can should will after before now still only also then use need may into no new one out up do has ' +
  'does which there than more about just any every each other'
).split(' ')
const DEV_WORDS = (
  'test tests build fails failing passes fixed fix bug error errors timeout retry config ' +
  'database migration schema index query cache redis postgres sqlite leveldb api endpoint route handler server ' +
  'client request response header token auth session login user users permission role admin deploy staging ' +
  'production release version branch merge rebase commit review pr ci pipeline docker image container ' +
  'kubernetes pod service port socket connection network dns proxy tls certificate key secret env variable ' +
  'file path directory module package dependency import export function class method type interface struct ' +
  'field value default option flag argument parameter return async await promise callback event listener ' +
  'queue worker job task scheduler cron batch stream buffer memory leak cpu profile latency throughput ' +
  'benchmark metric log logs logging trace debug warning crash panic exception stack frontend backend ui ' +
  'component render state store reducer hook props style css layout button form input validation parser ' +
  'lexer compiler typescript javascript rust python go node npm pnpm webpack vite bundle lint format prettier ' +
  'refactor rename cleanup deprecate remove delete add update create read write lock mutex race deadlock ' +
  'thread process signal shutdown startup restart reload watch polling websocket http grpc json yaml toml ' +
  'csv upload download storage bucket s3 backup restore snapshot replica shard cluster node peer mesh ' +
  'gossip sync conflict merge crdt encryption hash signature verify checksum payment invoice billing email ' +
  'notification search ranking pagination filter sort limit offset cursor transaction rollback commit ' +
  'isolation retries idempotent webhook oauth jwt cookie cors csrf rate limiter throttle'
).split(' ')
const SYLLABLES = (
  'ka lo mi ten ser vo ra chi ple dro ta nu ex bri con ver sta mo de li pa gro fen tal qui ' +
  'zor bel ani cro fu han jo lum nex or pri sul tor um val wex yar zen ment tion able ing ous ive'
).split(' ')

/**
 * A vocabulary ranked by frequency: function words, the dev vocabulary, then `extra` invented
 * words (project names, identifiers) that make a long tail; sampled with Zipf's law.
 */
export function vocabulary(seed, extra = 6000) {
  const r = rng(seed)
  const words = [...FUNCTION_WORDS, ...DEV_WORDS]
  const seen = new Set(words)
  while (words.length < FUNCTION_WORDS.length + DEV_WORDS.length + extra) {
    let w = ''
    const n = 2 + Math.floor(r() * 3)
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)]
    if (!seen.has(w)) {
      seen.add(w)
      words.push(w)
    }
  }
  return words
}

/** Zipf(s) sampler over ranks 0..n-1 by inverse CDF (binary search on the cumulative table). */
export function zipf(n, s, r) {
  const cdf = new Float64Array(n)
  let acc = 0
  for (let i = 0; i < n; i++) {
    acc += 1 / (i + 1) ** s
    cdf[i] = acc
  }
  return () => {
    const x = r() * acc
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const TAGS = (
  'bug todo decision api db auth ci deploy perf security frontend backend infra docs test ' +
  'release design question blocked done wip review incident oncall migration refactor flaky config ' +
  'billing search sync mobile cli mcp ux data ml ops legal'
).split(' ')

/**
 * Seeded realistic notes: 8–30 words from the shared Zipfian vocabulary, now and then a number,
 * a file path or an issue reference; 0–3 tags from a small Zipfian tag set.
 */
export function noteGenerator(seed, words = vocabulary(1)) {
  const r = rng(seed)
  const word = zipf(words.length, 1.05, r)
  const tag = zipf(TAGS.length, 1.0, r)
  return () => {
    const n = 8 + Math.floor(r() * 23)
    const out = []
    for (let i = 0; i < n; i++) {
      const x = r()
      if (x < 0.02) out.push(String(Math.floor(r() * 10000)))
      else if (x < 0.03) out.push(`src/${words[word()]}/${words[word()]}.ts`)
      else if (x < 0.035) out.push(`#${Math.floor(r() * 5000)}`)
      else out.push(words[word()])
    }
    const tags = new Set()
    const nt = Math.floor(r() * 4)
    for (let i = 0; i < nt; i++) tags.add(TAGS[tag()])
    return { content: out.join(' '), tags: [...tags] }
  }
}

/**
 * Seeded queries of 1–3 content words (no function words): 60% whole words, 20% with the
 * last word cut to a prefix of 3–5 letters, 20% with one typo (a letter replaced, dropped
 * or two swapped) in one word of 5+ letters.
 */
export function queryGenerator(seed, words = vocabulary(1)) {
  const r = rng(seed)
  const content = words.slice(FUNCTION_WORDS.length)
  const word = zipf(content.length, 0.9, r)
  const letters = 'abcdefghijklmnopqrstuvwxyz'
  const typo = w => {
    const i = 1 + Math.floor(r() * (w.length - 2))
    const k = r()
    if (k < 0.4) return w.slice(0, i) + letters[Math.floor(r() * 26)] + w.slice(i + 1)
    if (k < 0.7) return w.slice(0, i) + w.slice(i + 1)
    return w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2)
  }
  return () => {
    const n = 1 + Math.floor(r() * 3)
    const q = []
    for (let i = 0; i < n; i++) q.push(content[word()])
    const x = r()
    let kind = 'exact'
    if (x < 0.2) {
      const last = q[q.length - 1]
      if (last.length > 5) {
        q[q.length - 1] = last.slice(0, 3 + Math.floor(r() * 3))
        kind = 'prefix'
      }
    } else if (x < 0.4) {
      const i = q.findIndex(w => w.length >= 5)
      if (i >= 0) {
        q[i] = typo(q[i])
        kind = 'typo'
      }
    }
    return { query: q.join(' '), kind }
  }
}

// ---- sections in child processes ---------------------------------------------------------------

/**
 * Run `file` (a section script: `node <file> <json opts>`, one JSON line on stdout) in its own
 * process, bounded by `boundMs`; its stderr is passed on. BENCH_CPU_PROF=<dir> runs it under
 * --cpu-prof (summarise with `node bench/lib/cpuprof.mjs <dir>`).
 */
export async function runSection(file, opts, boundMs, { label = 'state', nodeArgs = [] } = {}) {
  const profDir = process.env.BENCH_CPU_PROF
  const prof = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${label}.${Date.now()}.cpuprofile`] : []
  const env = { ...process.env }
  delete env.DEBUG
  const t0 = performance.now()
  const p = spawnTracked([...nodeArgs, ...prof, file, JSON.stringify(opts)], { env })
  p.child.stderr.on('data', d => {
    process.stderr.write(d)
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    progress(`${label}: not done within ${boundMs} ms, stopping it`)
    void stopChild(p)
  }, boundMs)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  const last = p.stdout.seen.at(-1)?.line
  try {
    const r = JSON.parse(last)
    return { ...r, wallS: round((performance.now() - t0) / 1000) }
  } catch {
    return { ok: false, error: timedOut ? `timed out after ${boundMs} ms` : `section exited with ${code ?? signal} and no JSON` }
  }
}
