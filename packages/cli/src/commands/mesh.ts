/** `claudemesh mesh create|invite|join|list` */
import type { Command } from 'commander'
import { checkRelays, home } from '../options.js'
import { out, outJson, table, UsageError } from '../output.js'

// loaded by the command that needs it: the identity code (ed25519, invites, their schemas) is
// half of what every other `claudemesh` command would otherwise compile at start
const identity = () => import('@claudemesh/node/identity')

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** "7d", "12h", "30m", "90s", "2w" → milliseconds, at most `max` (an invite: 365 days) */
export function parseDuration(text: string, max: number): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim())
  const unit = m?.[2] != null ? UNITS[m[2]] : undefined
  if (m == null || unit == null || Number(m[1]) <= 0)
    throw new UsageError(`invalid duration "${text}": use a number and s, m, h, d or w (e.g. 7d)`)
  const ms = Number(m[1]) * unit
  if (ms > max) throw new UsageError(`duration "${text}" is too long: the most is ${Math.floor(max / 86_400_000)}d`)
  return ms
}

export function meshCommand(program: Command, env: NodeJS.ProcessEnv): void {
  const mesh = program.command('mesh').description('create, invite to, join and list meshes')

  mesh
    .command('create <name>')
    .description('create a mesh that you own')
    .option('--bootstrap <multiaddr...>', 'addresses that invites will carry')
    .option('--relay <multiaddr...>', 'relays (from `claudemesh relay`) that members and invites will use')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { bootstrap?: string[]; relay?: string[]; json?: boolean }) => {
      const { createMesh } = await identity()
      const m = await createMesh(home(env), name, { bootstrap: o.bootstrap, relays: checkRelays(o.relay) })
      if (o.json === true) outJson({ name: m.name, id: m.id })
      else out(`created mesh "${m.name}" (id ${m.id}); invite others with: claudemesh mesh invite ${m.name}`)
    })

  mesh
    .command('invite [name]')
    .description('print a one-line invite token')
    .option('--expires <duration>', 'lifetime such as 7d, 12h, 30m', '7d')
    .option('--bootstrap <multiaddr...>', 'extra addresses for the invitee to dial')
    .option('--relay', 'an invite for a relay: connection secret only, no content key')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: { expires: string; bootstrap?: string[]; relay?: boolean; json?: boolean }) => {
      const { createInvite, defaultMesh, MAX_INVITE_TTL_MS } = await identity()
      const m = await defaultMesh(home(env), name)
      const ttl = parseDuration(o.expires, MAX_INVITE_TTL_MS)
      const token = await createInvite(m, { ttl, bootstrap: o.bootstrap, relay: o.relay })
      if (o.json === true) outJson({ mesh: m.name, token, expiresAt: new Date(Date.now() + ttl).toISOString() })
      else out(token)
    })

  mesh
    .command('join <token>')
    .description('join a mesh with an invite token')
    .option('--json', 'print JSON')
    .action(async (token: string, o: { json?: boolean }) => {
      const { joinMesh } = await identity()
      const m = await joinMesh(home(env), token)
      if (o.json === true) outJson({ name: m.name, id: m.id, bootstrap: m.bootstrap })
      else out(`joined mesh "${m.name}" (id ${m.id})`)
    })

  mesh
    .command('relays [name]')
    .description('show, add or remove the relays of a mesh (invites made afterwards carry them)')
    .option('--add <multiaddr...>', 'relay addresses, as `claudemesh relay` prints them')
    .option('--remove <multiaddr...>', 'relay addresses to forget')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: { add?: string[]; remove?: string[]; json?: boolean }) => {
      const { defaultMesh, saveMesh } = await identity()
      const m = await defaultMesh(home(env), name)
      if (o.add != null || o.remove != null) {
        const gone = new Set(o.remove ?? [])
        m.relays = [...new Set([...m.relays, ...checkRelays(o.add)])].filter(r => !gone.has(r))
        await saveMesh(home(env), m)
      }
      if (o.json === true) return outJson({ mesh: m.name, relays: m.relays })
      if (m.relays.length === 0)
        return out(`mesh "${m.name}" has no relay; add one with: claudemesh mesh relays ${m.name} --add <multiaddr>`)
      for (const r of m.relays) out(r)
    })

  mesh
    .command('list')
    .description('list the meshes in this home')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { listMeshes } = await identity()
      const all = await listMeshes(home(env))
      const rows = all.map(m => ({
        name: m.name,
        id: m.id,
        owner: m.ownerKey != null,
        member: m.contentSecret != null,
        bootstrap: m.bootstrap
      }))
      if (o.json === true) return outJson(rows)
      if (rows.length === 0) return out('no meshes yet: claudemesh mesh create <name>, or claudemesh mesh join <token>')
      out(
        table([
          ['NAME', 'ID', 'ROLE', 'BOOTSTRAP'],
          ...rows.map(r => [r.name, r.id, r.owner ? 'owner' : r.member ? 'member' : 'relay', String(r.bootstrap.length)])
        ])
      )
    })
}
