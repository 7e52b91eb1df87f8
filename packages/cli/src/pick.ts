/**
 * Which running node a verb talks to: `--session`, `--name` or `$CLAUDEMESH_SESSION`; with
 * none, the only running node of the mesh; otherwise a clear error listing the candidates.
 */
import { ControlClient, listMeshNames, listRunning, type RegistryEntry } from '@claudemesh/node/client'
import { home } from './options.js'
import { UsageError } from './output.js'

export interface PickFlags {
  mesh?: string
  session?: string
  name?: string
}

export async function pickNode(flags: PickFlags, env: NodeJS.ProcessEnv): Promise<RegistryEntry> {
  const h = home(env)
  const mesh = { name: await meshName(h, flags.mesh) }
  const running = (await listRunning(h, mesh.name)).filter(e => e.kind !== 'relay')
  const session = flags.session ?? env.CLAUDEMESH_SESSION
  const list = (es: RegistryEntry[]): string => es.map(e => `${e.name} (session ${e.session}, pid ${e.pid})`).join('; ')
  if (session != null && session !== '') {
    const hit = running.find(e => e.session === session.toLowerCase())
    if (hit == null)
      throw new UsageError(
        `no running node of mesh "${mesh.name}" has session ${session}${running.length > 0 ? `; running: ${list(running)}` : ''}`
      )
    return hit
  }
  if (flags.name != null) {
    // a session of that name wins over the courier of a stopped one
    const named = running.filter(e => e.name === flags.name)
    const hits = named.some(e => e.kind !== 'courier') ? named.filter(e => e.kind !== 'courier') : named
    if (hits.length === 1 && hits[0] != null) return hits[0]
    if (hits.length > 1) throw new UsageError(`several running nodes are named "${flags.name}": ${list(hits)}; pick one with --session`)
    throw new UsageError(
      `no running node of mesh "${mesh.name}" is named "${flags.name}"${running.length > 0 ? `; running: ${list(running)}` : ''}`
    )
  }
  // a courier (SPEC.md §8.7) answers to its session's id or name, never as "the only node"
  const sessions = running.filter(e => e.kind !== 'courier')
  if (sessions.length === 1 && sessions[0] != null) return sessions[0]
  if (sessions.length === 0 && running.length > 0)
    throw new UsageError(
      `no session of mesh "${mesh.name}" is running here, only couriers of stopped ones (pick one with --session or --name): ${list(running)}`
    )
  if (running.length === 0)
    throw new UsageError(`no node of mesh "${mesh.name}" is running here: start one with \`claudemesh daemon\` or \`claudemesh launch\``)
  throw new UsageError(`${sessions.length} nodes of mesh "${mesh.name}" are running; pick one with --session or --name: ${list(sessions)}`)
}

/** The mesh a verb means: `--mesh`, else the only one in the home. */
export async function meshName(h: string, name?: string): Promise<string> {
  const names = await listMeshNames(h)
  if (name != null) {
    if (!names.includes(name)) throw new UsageError(`no mesh "${name}" in ${h}${names.length > 0 ? ` (known: ${names.join(', ')})` : ''}`)
    return name
  }
  if (names.length === 1 && names[0] != null) return names[0]
  if (names.length === 0)
    throw new UsageError(`no mesh in ${h}: create one with \`claudemesh mesh create <name>\` or join with \`claudemesh mesh join <token>\``)
  throw new UsageError(`several meshes in ${h}, pick one with --mesh: ${names.join(', ')}`)
}

/** Call one control method on the picked node. */
export async function callNode<T>(flags: PickFlags, env: NodeJS.ProcessEnv, method: string, params: unknown = {}): Promise<T> {
  const entry = await pickNode(flags, env)
  const client = await ControlClient.connect(entry.control)
  try {
    return await client.call<T>(method, params)
  } finally {
    client.close()
  }
}
