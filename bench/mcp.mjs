// MCP benchmarks, one JSON object on stdout, progress on stderr:
//  - spawn → `initialize` answered for `claudemesh mcp --session <uuid> --name x` (node
//    packages/cli/dist/claudemesh.mjs, CLAUDEMESH_HOME = a temp home with a mesh and one peer daemon),
//    median of 10, each with a fresh session, after a first server in the same home wrote the
//    code cache (and, not quick, 10 more with CLAUDEMESH_CODE_CACHE=0, a first start); the same for a trivial MCP server written with
//    the same SDK (lib/trivial-mcp.mjs) as the baseline, in the same run;
//  - tool call latency p50/p99 of `mesh_info` and `list_peers` (200 calls each after a
//    warm-up), and of the trivial server's `ping`;
//  - idle memory, what a session costs the machine while it waits: RSS and private memory of
//    servers (3; quick: 2) that answered `initialize` and `tools/list`, saw the peer online and then
//    sat idle 3 s (and, not quick, 35 s: `settled`), beside the trivial server's in the same run.
// The client is the SDK's Client + StdioClientTransport, resolved from packages/cli.
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { codeCacheReady, withPeerHome } from './lib/daemons.mjs'
import { lat, r3 } from './lib/agents.mjs'
import { cliBin, emit, guard, procCpuMs, procMemMB, procPrivateMB, progress, root, round, sleep, summary } from './lib/harness.mjs'
import { importFrom } from './lib/resolve.mjs'

const cliDir = join(root, 'packages/cli')
const [{ Client }, { StdioClientTransport }] = await Promise.all([
  importFrom(cliDir, '@modelcontextprotocol/sdk/client/index.js'),
  importFrom(cliDir, '@modelcontextprotocol/sdk/client/stdio.js')
])
const trivialServer = join(fileURLToPath(new URL('.', import.meta.url)), 'lib', 'trivial-mcp.mjs')

// BENCH_QUICK=1 (CI smoke): 5 spawns of each server, not 10
const SPAWNS = Number(process.env.BENCH_MCP_SPAWNS ?? (process.env.BENCH_QUICK === '1' ? 5 : 10))
const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 200)
const WARMUP = 20
const INIT_TIMEOUT_MS = 20_000
// BENCH_CPU_PROF=<dir>: run every spawned server under --cpu-prof (summarise with lib/cpuprof.mjs)
const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []
const CALL_TIMEOUT_MS = 10_000
const IDLE_SERVERS = process.env.BENCH_QUICK === '1' ? 2 : 3
const IDLE_MS = 3_000
const SETTLED_MS = process.env.BENCH_QUICK === '1' ? 0 : 35_000

const result = {}
guard(300_000, () => result)

/** every MCP server child we started, killed on any exit of this process */
const pids = new Set()
process.on('exit', () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
})

function bounded(p, ms, what) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    })
  ])
}

/** Spawn an MCP stdio server and time spawn → the initialize answer (Client.connect resolving). */
async function open(args, env) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [...prof, ...args], env, stderr: 'pipe' })
  let stderr = ''
  transport.stderr?.on('data', d => {
    stderr = (stderr + d).slice(-2000)
  })
  const client = new Client({ name: 'claudemesh-bench', version: '0.0.0' })
  const t0 = performance.now()
  try {
    await bounded(client.connect(transport), INIT_TIMEOUT_MS, 'initialize')
  } catch (err) {
    await transport.close().catch(() => {})
    err.message += ` (server stderr: ${stderr.trim().split('\n').slice(-3).join(' | ')})`
    throw err
  }
  const ms = performance.now() - t0
  // CPU the server had used by its initialize answer: what other load on the machine cannot inflate
  const cpuMs = transport.pid != null ? procCpuMs(transport.pid) : null
  if (transport.pid != null) pids.add(transport.pid)
  return {
    client,
    ms,
    cpuMs,
    pid: transport.pid,
    async close() {
      const pid = transport.pid
      await client.close().catch(() => {})
      if (pid != null) pids.delete(pid)
    }
  }
}

async function spawnSeries(name, argsFor, env) {
  const times = []
  const cpu = []
  const failures = []
  for (let i = 0; i < SPAWNS; i++) {
    try {
      const s = await open(argsFor(i), env)
      times.push(s.ms)
      if (s.cpuMs != null) cpu.push(s.cpuMs)
      await s.close()
    } catch (err) {
      failures.push(err.message)
      progress(`${name} spawn ${i + 1} failed: ${err.message}`)
    }
  }
  progress(`${name}: spawn → initialize median ${summary(times).median} ms, ${summary(cpu).median} ms CPU`)
  return { ...summary(times), cpuMs: summary(cpu), ...(failures.length > 0 ? { failures } : {}) }
}

/** Until `mesh_info` counts a peer online (bounded); the count. */
async function untilPeerOnline(client) {
  const t = performance.now()
  let peers = 0
  while (performance.now() - t < 10_000) {
    const r = await client.callTool({ name: 'mesh_info', arguments: {} })
    peers = r.structuredContent?.counts?.peers_online ?? 0
    if (peers > 0) break
    await sleep(50)
  }
  return peers
}

/**
 * RSS and private MB of servers that answered initialize and tools/list (and, `meshed`, saw a peer
 * online): IDLE_MS after that, and (not quick) again SETTLED_MS after it, once V8's memory reducer
 * has had its turn (it gives back young generation and heap the start grew: 3-5 MB at 30 s). The
 * servers are opened one after another and then idle together.
 */
async function idleMemory(name, argsFor, env, meshed) {
  const servers = []
  /** the servers' RSS and private MB now, `afterMs` after they went idle */
  const measure = afterMs => {
    const rss = []
    const priv = []
    for (const s of servers) {
      const m = procMemMB(s.pid)
      if (m == null) throw new Error('no /proc/<pid>/status (not Linux?)')
      rss.push(m.rss)
      const p = procPrivateMB(s.pid)
      if (p != null) priv.push(p)
    }
    return { afterMs, rssMB: summary(rss), privateMB: summary(priv) }
  }
  let out
  try {
    for (let i = 0; i < IDLE_SERVERS; i++) {
      const s = await open(argsFor(i), env)
      servers.push(s)
      await s.client.listTools()
      if (meshed && (await untilPeerOnline(s.client)) === 0) throw new Error(`${name}: the peer never came online`)
    }
    await sleep(IDLE_MS)
    out = measure(IDLE_MS)
    if (SETTLED_MS > 0) {
      await sleep(SETTLED_MS - IDLE_MS)
      out.settled = measure(SETTLED_MS)
    }
  } finally {
    await Promise.all(servers.map(async s => s.close()))
  }
  progress(
    `${name}: idle RSS median ${out.rssMB.median} MB${out.settled != null ? `, ${out.settled.rssMB.median} MB after ${SETTLED_MS / 1000} s` : ''}`
  )
  return out
}

async function callSeries(client, name, args = {}) {
  const times = []
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const t = performance.now()
    const r = await bounded(client.callTool({ name, arguments: args }), CALL_TIMEOUT_MS, name)
    const ms = performance.now() - t
    if (r.isError) throw new Error(`${name} returned an error: ${JSON.stringify(r.content).slice(0, 200)}`)
    if (i >= WARMUP) times.push(ms)
  }
  return lat(times)
}

async function main() {
  const trivialEnv = { ...process.env }
  result.trivialServer = { what: 'baseline: an MCP stdio server with one tool, same SDK (bench/lib/trivial-mcp.mjs)' }
  result.trivialServer.spawnToInitializeMs = await spawnSeries('trivial server', () => [trivialServer], trivialEnv)
  {
    const s = await open([trivialServer], trivialEnv)
    try {
      result.trivialServer.pingCallMs = await callSeries(s.client, 'ping')
    } finally {
      await s.close()
    }
  }
  result.trivialServer.idle = await idleMemory('trivial server', () => [trivialServer], trivialEnv, false)
  await withPeerHome(async ({ env, home }) => {
    const mcpArgs = () => [cliBin, 'mcp', '--session', randomUUID(), '--name', 'x']
    const claudemesh = { what: '`claudemesh mcp --session <fresh uuid> --name x`, temp home with one mesh and one peer daemon' }
    result.claudemesh = claudemesh
    // the calls first: their server runs long enough to write the mcp role's code cache
    // (packages/cli/src/node-bundle.ts), as a user's first session does for every later one
    const s = await open(mcpArgs(), env)
    try {
      // let it find the peer, so list_peers has someone to list
      claudemesh.peersOnlineDuringCalls = await untilPeerOnline(s.client)
      claudemesh.meshInfoCallMs = await callSeries(s.client, 'mesh_info')
      claudemesh.listPeersCallMs = await callSeries(s.client, 'list_peers')
      claudemesh.codeCache = (await codeCacheReady(home, 'mcp')) ? 'used (written by the first server)' : 'none written within 15 s'
    } finally {
      await s.close()
    }
    claudemesh.spawnToInitializeMs = await spawnSeries('claudemesh mcp', mcpArgs, env)
    claudemesh.idle = await idleMemory('claudemesh mcp', mcpArgs, env, true)
    if (process.env.BENCH_QUICK !== '1')
      claudemesh.noCodeCacheSpawnToInitializeMs = await spawnSeries('claudemesh mcp, CLAUDEMESH_CODE_CACHE=0', mcpArgs, {
        ...env,
        CLAUDEMESH_CODE_CACHE: '0'
      })
  })
  const cm = result.claudemesh.spawnToInitializeMs
  const base = result.trivialServer.spawnToInitializeMs
  result.spawnRatioToTrivial = r3(cm.median / base.median)
  result.spawnOverTrivialMs = round(cm.median - base.median)
  result.spawnCpuOverTrivialMs = round((cm.cpuMs?.median ?? NaN) - (base.cpuMs?.median ?? NaN))
  result.idleRssOverTrivialMB = round(result.claudemesh.idle.rssMB.median - result.trivialServer.idle.rssMB.median)
  if (SETTLED_MS > 0)
    result.settledRssOverTrivialMB = round(result.claudemesh.idle.settled.rssMB.median - result.trivialServer.idle.settled.rssMB.median)
  result.ok = cm.failures == null && base.failures == null
}

try {
  await main()
} catch (err) {
  progress(`mcp bench failed: ${err.stack ?? err}`)
  result.ok = false
  result.error = err.message
}
emit(result)
process.exit(0)
