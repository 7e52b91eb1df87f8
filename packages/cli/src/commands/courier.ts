/**
 * `claudemesh courier` (hidden): carries the DMs a stopped session left queued (SPEC.md §8.7).
 * `spawnCourier` starts it from a stopping `mcp` or `daemon`, detached (its own session, so a
 * closing terminal or claude's exit does not take it along) and without our stdio: stdout of
 * `claudemesh mcp` is the MCP channel. Its stderr goes to a small log in the run directory.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync, statSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import type { MeshNode } from '@claudemesh/node'
import { paths } from '@claudemesh/node/client'
import { boundOldGeneration } from '@claudemesh/node/heap'
import type { Command } from 'commander'
import { selfCommand } from '../claude.js'
import { checkRelays, home, LIMIT_HELP, limitFlags, type NodeFlags } from '../options.js'
import { note, UsageError } from '../output.js'

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

/** The courier's log: one per session key in the run directory, cut when it passes this. */
const LOG_MAX_BYTES = 256 * 1024

export function courierLogPath(h: string, mesh: string, peerId: string): string {
  return join(paths.run(h, mesh), `${peerId.slice(-12)}.courier.log`)
}

interface CourierFlags {
  mesh: string
  session: string
  incarnation: string
  name?: string
  bootstrap?: string[]
  relay?: string[]
  limit?: string[]
}

export function courierCommand(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('courier', { hidden: true })
    .description('carry the queued DMs of a session that stopped (started by mcp and daemon)')
    .requiredOption('--mesh <mesh>', 'mesh name')
    .requiredOption('--session <uuid>', 'the stopped session')
    .requiredOption('--incarnation <ms>', 'the stopped incarnation')
    .option('--name <name>', "the session's display name (for verbs that pick a node by name)")
    .option('--bootstrap <multiaddr>', 'peer to dial (repeatable)', collect)
    .option('--relay <multiaddr>', 'relay to use (repeatable)', collect)
    .option('--limit <name=value>', LIMIT_HELP, collect)
    .action(async (flags: CourierFlags) => {
      const incarnation = Number(flags.incarnation)
      if (!Number.isSafeInteger(incarnation) || incarnation <= 0) throw new UsageError(`invalid --incarnation "${flags.incarnation}"`)
      const limits = limitFlags(flags.limit)
      boundOldGeneration()
      const { runCourier } = await import('@claudemesh/node')
      const stop = new AbortController()
      for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const)
        process.once(s, () => {
          stop.abort()
        })
      const outcome = await runCourier(
        {
          home: home(env),
          mesh: flags.mesh,
          session: flags.session,
          name: flags.name,
          bootstrap: flags.bootstrap,
          relays: checkRelays(flags.relay),
          ...(limits != null ? { limits } : {}),
          courier: { incarnation }
        },
        {
          signal: stop.signal,
          onStart: n => {
            note(`claudemesh courier: ${new Date().toISOString()} session ${flags.session}: carrying ${n} queued DM(s)`)
          }
        }
      )
      note(`claudemesh courier: ${new Date().toISOString()} session ${flags.session}: ${outcome}`)
    })
}

/**
 * A stopping session with DMs still queued: start its courier now, before the bounded flush,
 * so that a stop cut short (a second signal, a SIGKILL after a grace period) still leaves one.
 * The courier waits for the store; if the flush hands everything over, it finds nothing to
 * carry and exits at once.
 */
export function spawnCourier(node: MeshNode, flags: NodeFlags, env: NodeJS.ProcessEnv): void {
  if (!node.running || node.queued === 0 || node.init.courier != null) return
  const h = home(env)
  const [exe, script] = selfCommand() as [string, string]
  const args = [
    script,
    'courier',
    '--mesh',
    node.mesh.name,
    '--session',
    node.key.session,
    '--incarnation',
    String(node.presence.incarnation),
    '--name',
    node.self().name
  ]
  for (const b of flags.bootstrap ?? []) args.push('--bootstrap', b)
  // the mesh's relays, the flags' and those learnt from bootstrap peers
  for (const r of node.relays()) args.push('--relay', r)
  // mail a relay held for the session reaches the courier too: the same budgets apply
  for (const l of flags.limit ?? []) args.push('--limit', l)
  let log: number | 'ignore' = 'ignore'
  try {
    const file = courierLogPath(h, node.mesh.name, node.peerId)
    if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) > LOG_MAX_BYTES) truncateSync(file, 0)
    log = openSync(file, 'a', 0o600)
  } catch {}
  try {
    const child = spawn(exe, args, {
      detached: true,
      stdio: ['ignore', 'ignore', log],
      env: { ...process.env, ...env, CLAUDEMESH_HOME: h }
    })
    child.once('error', err => {
      note(`claudemesh: could not start the courier for ${node.queued} queued DM(s): ${err.message}`)
    })
    child.unref()
    note(`claudemesh: ${node.queued} DM(s) still queued; a courier (pid ${child.pid ?? '?'}) carries whatever this stop does not hand over`)
  } finally {
    if (typeof log === 'number') closeSync(log)
  }
}
