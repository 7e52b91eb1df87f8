/**
 * `claudemesh relay`: the mesh's relay in the foreground (SPEC.md §12). Prints its dialable
 * multiaddrs on stdout, one a line, once ready; logs JSON lines on stderr; stops gracefully
 * on SIGTERM or SIGINT (every deposit in flight made durable first).
 */
import { join } from 'node:path'
import type { Command } from 'commander'
import { home } from '../options.js'
import { out, UsageError } from '../output.js'

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]
const LEVELS = ['debug', 'info', 'warn', 'error']

interface RelayFlags {
  listen?: string[]
  announce?: string[]
  data?: string
  mesh?: string
  invite?: string
  health?: string
  logLevel: string
  maxHeld?: string
  maxHeldBytes?: string
}

function count(text: string | undefined, what: string): number | undefined {
  if (text == null) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what} must be a positive whole number, not "${text}"`)
  return n
}

export function relayCommand(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('relay')
    .description('run a relay for a mesh: circuit relay for peers behind NAT, DHT/bootstrap, mailbox for offline peers')
    .option('--listen <multiaddr>', 'listen address (repeatable; default /ip4/0.0.0.0/tcp/4001)', collect)
    .option('--announce <multiaddr>', 'address to announce instead of the listening ones (repeatable)', collect)
    .option('--data <dir>', "the relay's directory: key, mesh, mailbox (default $CLAUDEMESH_HOME/relay)")
    .option('--mesh <name>', 'serve a mesh of this home (its content key is not used)')
    .option('--invite <token>', 'serve the mesh of a relay invite (`claudemesh mesh invite --relay`); kept in --data')
    .option('--health <[host:]port>', 'serve GET /health (JSON) on this address')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--max-held <n>', 'most messages held for one recipient (default 10000)')
    .option('--max-held-bytes <n>', 'most bytes held for one recipient (default 64 MiB)')
    .action(async (o: RelayFlags) => {
      if (o.mesh != null && o.invite != null) throw new UsageError('give --mesh or --invite, not both')
      if (!LEVELS.includes(o.logLevel)) throw new UsageError(`invalid --log-level "${o.logLevel}": use ${LEVELS.join(', ')}`)
      const limits = { perRecipient: count(o.maxHeld, '--max-held'), perRecipientBytes: count(o.maxHeldBytes, '--max-held-bytes') }
      const [{ createRelay, createLog }, { loadMesh }] = await Promise.all([
        import('@claudemesh/relay'),
        import('@claudemesh/node/identity')
      ])
      const h = home(env)
      const relay = await createRelay({
        data: o.data ?? join(h, 'relay'),
        invite: o.invite,
        mesh: o.mesh != null ? await loadMesh(h, o.mesh) : undefined,
        listen: o.listen,
        announce: o.announce,
        health: o.health,
        limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v != null)),
        log: createLog(o.logLevel as 'info')
      })
      // signals first: a supervisor may stop us the moment it sees our addresses
      let stopping: Promise<void> | undefined
      let started: Promise<void> = Promise.resolve()
      const stopped = new Promise<void>(resolve => {
        const stop = (signal: string): void => {
          if (stopping != null) return
          relay.log.info('stopping', { signal })
          stopping = started
            .catch(() => {})
            .then(async () => relay.stop())
            .finally(resolve)
        }
        process.once('SIGINT', () => {
          stop('SIGINT')
        })
        process.once('SIGTERM', () => {
          stop('SIGTERM')
        })
      })
      started = relay.start()
      await started
      if (stopping == null) for (const a of relay.multiaddrs()) out(a)
      await stopped
    })
}
