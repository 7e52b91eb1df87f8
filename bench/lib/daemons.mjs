// `claudemesh daemon` processes: cold start (spawn → ready → sees the peer) and idle RSS.
// One long-lived peer daemon runs in a temp home; each measured daemon gets a fresh --name
// (so a fresh session key and store) in the same home and finds the peer via the registry.
import { execFileSync } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import {
  cliBin,
  procCpuMs,
  procMemMB,
  procPrivateMB,
  progress,
  removeDir,
  root,
  round,
  sleep,
  spawnTracked,
  stopChild,
  summary,
  tempDir,
  timeToExit
} from './harness.mjs'

const PEER = 'bench-peer'
const READY_TIMEOUT_MS = 15_000
const JOIN_TIMEOUT_MS = 15_000

/** `node -e` body that only loads the node package (the daemon's import cost, no start) */
const dist = f => pathToFileURL(join(root, 'packages/node/dist', f)).href
const importNodeScript = `await import('${dist('polyfill.js')}'); await import('${dist('index.js')}')`

const isAddr = line => line.includes('/p2p/')
const joinedLine = name => line => line.startsWith(`+ ${name} (`) && line.endsWith(') joined')

/** A temp home with one mesh and a peer daemon; `close()` stops it and removes the home. */
export async function withPeerHome(fn) {
  const home = tempDir('claudemesh-bench-')
  const env = { ...process.env, CLAUDEMESH_HOME: home }
  delete env.DEBUG
  let peer
  try {
    execFileSync(process.execPath, [cliBin, 'mesh', 'create', 'bench'], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 })
    peer = spawnDaemon(env, PEER)
    await peer.stdout.wait(isAddr, READY_TIMEOUT_MS, 'multiaddr from the peer daemon')
    return await fn({ home, env, peer })
  } finally {
    if (peer != null) await stopChild(peer)
    removeDir(home)
  }
}

export function spawnDaemon(env, name, bin = cliBin) {
  return spawnTracked([bin, 'daemon', '--name', name], { env })
}

/** Spawn a daemon and time spawn → first multiaddr (ready) and spawn → "+ bench-peer joined". */
async function coldStartOnce(env, name, bin = cliBin) {
  const d = spawnDaemon(env, name, bin)
  try {
    const ready = await d.stdout.wait(isAddr, READY_TIMEOUT_MS, 'multiaddr on stdout')
    const joined = await d.stderr.wait(joinedLine(PEER), JOIN_TIMEOUT_MS, `"+ ${PEER} joined" on stderr`)
    // CPU used by then: the part of the cold start that other load on the machine cannot inflate
    return { ready: ready - d.t0, joined: joined - d.t0, cpu: procCpuMs(d.child.pid), daemon: d }
  } catch (err) {
    err.message += ` (stderr: ${d.stderr.tail()})`
    await stopChild(d)
    throw err
  }
}

/**
 * A role's code cache (packages/cli/src/node-bundle.ts) in this home: a process of that role
 * writes it 3 s after its start, and a user's every start but the first finds it. Waits for it
 * (up to `ms`); true when it is there.
 */
export async function codeCacheReady(home, role, ms = 15_000, except = new Set()) {
  const dir = join(home, 'cache')
  const until = performance.now() + ms
  while (performance.now() < until) {
    if ((await readdir(dir).catch(() => [])).some(f => f.startsWith(`${role}-`) && f.endsWith('.v8') && !except.has(f))) return true
    await sleep(100)
  }
  return false
}

/**
 * Start a daemon of build `bin` once so that it writes its own code cache (a cache is keyed by
 * the bundle's path): every measured start of it then starts as a user's would. True when written.
 */
async function warmCodeCache(ctx, bin) {
  const before = new Set(await readdir(join(ctx.home, 'cache')).catch(() => []))
  const d = spawnDaemon(ctx.env, 'warm-ab', bin)
  try {
    return await codeCacheReady(ctx.home, 'daemon', 15_000, before)
  } finally {
    await stopChild(d)
  }
}

/**
 * `runs` cold starts of a daemon (with the code cache, as every start after a user's first),
 * and with `noCache` as many again, interleaved, with CLAUDEMESH_CODE_CACHE=0: the same bundle
 * compiled from source, as a first start is. With `abBin` (another build's dist/claudemesh.mjs,
 * copied inside packages/cli so its imports resolve) as many starts of that build, interleaved
 * with this one's in the same home: an A/B that the machine's drifting load hits on both sides.
 */
export async function coldStart(ctx, runs = 10, { noCache = false, abBin } = {}) {
  const baseline = []
  for (let i = 0; i < runs; i++) baseline.push(await timeToExit(['-e', '0']))
  const cliVersion = []
  for (let i = 0; i < runs; i++) cliVersion.push(await timeToExit([cliBin, '--version']))
  // what Claude Code pays after every tool call (PostToolUse): a hook of a session with no node here
  const hook = []
  const hookEnv = { ...ctx.env, CLAUDE_CODE_SESSION_ID: '00000000-0000-4000-8000-000000000000' }
  for (let i = 0; i < runs; i++) hook.push(await timeToExit([cliBin, 'hook', 'post-tool-use'], { env: hookEnv }))
  const importNode = []
  for (let i = 0; i < runs; i++) importNode.push(await timeToExit(['--input-type=module', '-e', importNodeScript]))
  const codeCache = await codeCacheReady(ctx.home, 'daemon')
  const stop = []
  const failures = []
  /** one build and environment to start: what each of its starts measured */
  const variant = (name, env, bin, tag) => ({ name, env, bin, tag, ready: [], joined: [], cpu: [] })
  const head = variant('head', ctx.env, cliBin, 'cold')
  const nc = noCache ? variant('no cache', { ...ctx.env, CLAUDEMESH_CODE_CACHE: '0' }, cliBin, 'cold-nc') : undefined
  const ab = abBin != null ? variant(abBin, ctx.env, abBin, 'cold-ab') : undefined
  const abCache = ab != null ? await warmCodeCache(ctx, abBin) : false
  const variants = [head, nc, ab].filter(v => v != null)
  // each round runs every variant once, in an order rotated by one each round: a start right
  // after a start compiled from source measured ~20-40 ms slower, so no variant always follows it
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(i + k) % variants.length]
      try {
        const r = await coldStartOnce(v.env, `${v.tag}-${i}`, v.bin)
        v.ready.push(r.ready)
        v.joined.push(r.joined)
        if (r.cpu != null) v.cpu.push(r.cpu)
        const t = performance.now()
        await stopChild(r.daemon)
        if (v !== head) continue
        stop.push(performance.now() - t)
        progress(`cold start ${i + 1}/${runs}: ready ${round(r.ready)} ms, joined ${round(r.joined)} ms`)
      } catch (err) {
        failures.push(`${v.name}: ${err.message}`)
        progress(`cold start ${i + 1}/${runs} (${v.name}) failed: ${err.message}`)
      }
    }
  }
  const nodeCpus = []
  for (let i = 0; i < Math.min(runs, 5); i++) nodeCpus.push(await nodeCpu())
  const joinedSummary = summary(head.joined)
  const nodeSummary = summary(baseline)
  return {
    ok: failures.length === 0,
    target: '< 300 ms (spawn → connected to one peer)',
    readyMs: summary(head.ready),
    joinedMs: joinedSummary,
    /** CPU (user + system, 10 ms ticks) the daemon had used when it saw the peer */
    cpuMsAtJoin: summary(head.cpu),
    codeCache: codeCache
      ? 'used (written by the long-lived peer daemon in the same home)'
      : 'not written within 15 s: compiled from source',
    ...(nc != null
      ? {
          noCodeCache: {
            what: 'the same starts interleaved with CLAUDEMESH_CODE_CACHE=0 (a first start: the bundle compiled from source)',
            joinedMs: summary(nc.joined),
            cpuMsAtJoin: summary(nc.cpu)
          }
        }
      : {}),
    ...(ab != null
      ? {
          ab: {
            what: 'the same starts of another build (BENCH_AB_BIN), interleaved with these in the same home',
            bin: abBin,
            codeCache: abCache ? 'its own, written before the runs' : 'not written within 15 s',
            readyMs: summary(ab.ready),
            joinedMs: summary(ab.joined),
            cpuMsAtJoin: summary(ab.cpu),
            /** this build's median joined time over the other's: below 1 is faster */
            joinedRatio: round(joinedSummary.median / summary(ab.joined).median, 3)
          }
        }
      : {}),
    stopMs: summary(stop),
    baseline: {
      nodeE0Ms: nodeSummary,
      nodeE0CpuMs: summary(nodeCpus.filter(Number.isFinite)),
      cliVersionMs: summary(cliVersion),
      hookMs: summary(hook),
      importNodePackageMs: summary(importNode)
    },
    ratioToNodeE0: round(joinedSummary.median / nodeSummary.median),
    meetsTarget: joinedSummary.median < 300,
    ...(failures.length > 0 ? { failures } : {})
  }
}

/** CPU (user + system) a bare `node -e` uses from its start to its exit, in ms (getrusage: the whole process). */
async function nodeCpu() {
  const p = spawnTracked([
    '-e',
    "process.on('exit', () => { const c = process.cpuUsage(); process.stdout.write(String((c.user + c.system) / 1000) + '\\n') })"
  ])
  await Promise.all([
    p.exited,
    new Promise(resolve => {
      p.child.stdout.once('close', resolve)
    })
  ])
  return Number(p.stdout.seen.at(-1)?.line ?? NaN)
}

/** RSS of a daemon that is connected and then idle for `idleMs`, median of `count` daemons. */
export async function idleRss(ctx, count = 3, idleMs = 3_000) {
  const idle = spawnTracked(['-e', 'setInterval(() => {}, 1000)'])
  const importOnly = spawnTracked(['--input-type=module', '-e', `${importNodeScript}; setInterval(() => {}, 1000)`])
  const rss = []
  const priv = []
  const hwm = []
  const cpu = []
  const failures = []
  try {
    for (let i = 0; i < count; i++) {
      const d = spawnDaemon(ctx.env, `rss-${i}`)
      try {
        await d.stderr.wait(joinedLine(PEER), READY_TIMEOUT_MS + JOIN_TIMEOUT_MS, `"+ ${PEER} joined" on stderr`)
        const cpu0 = procCpuMs(d.child.pid)
        await sleep(idleMs)
        const m = procMemMB(d.child.pid)
        if (m == null) throw new Error('no /proc/<pid>/status (not Linux?)')
        rss.push(m.rss)
        hwm.push(m.hwm)
        priv.push(procPrivateMB(d.child.pid))
        cpu.push(procCpuMs(d.child.pid) - cpu0)
        progress(`idle daemon ${i + 1}/${count}: RSS ${m.rss} MB (peak ${m.hwm} MB), ${cpu.at(-1)} ms CPU while idle`)
      } catch (err) {
        failures.push(`${err.message} (stderr: ${d.stderr.tail()})`)
      } finally {
        await stopChild(d)
      }
    }
    const rssSummary = summary(rss)
    return {
      ok: failures.length === 0,
      target: '< 60 MB (idle, connected)',
      idleMs,
      rssMB: rssSummary,
      /** anonymous (private) memory: RSS less the node binary and libraries, shared by all sessions */
      privateMB: summary(priv.filter(x => x != null)),
      peakRssMB: summary(hwm),
      /** CPU the "idle" daemon burnt during the idle window: should be near 0 */
      idleCpuMs: summary(cpu),
      longLivedPeerRssMB: procMemMB(ctx.peer.child.pid)?.rss ?? null,
      baseline: {
        nodeIdleRssMB: procMemMB(idle.child.pid)?.rss ?? null,
        nodeIdlePrivateMB: procPrivateMB(idle.child.pid),
        importNodePackageRssMB: procMemMB(importOnly.child.pid)?.rss ?? null
      },
      meetsTarget: rssSummary.median < 60,
      ...(failures.length > 0 ? { failures } : {})
    }
  } finally {
    await stopChild(idle)
    await stopChild(importOnly)
  }
}
