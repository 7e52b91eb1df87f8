/**
 * The registry of running nodes under a shared home: `$CLAUDEMESH_HOME/run/<mesh>/<peer>.json`,
 * one file per live node, written when it listens and removed when it stops. Nodes that share
 * a home find each other through it with no flags; CLI verbs find their node's control socket
 * through it. A file whose pid is gone is stale and removed by whoever notices.
 */
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { assertPrivate, assertPrivateTree, paths, readFileOrUndefined, writeFileAtomic } from '../home.js'

export const RegistryEntrySchema = z.object({
  v: z.literal(1),
  peerId: z.string(),
  pid: z.number().int(),
  mesh: z.string(),
  session: z.string(),
  name: z.string(),
  kind: z.enum(['mcp', 'daemon', 'relay', 'courier']),
  addrs: z.array(z.string()),
  control: z.string(),
  incarnation: z.number(),
  startedAt: z.number()
})
export type RegistryEntry = z.infer<typeof RegistryEntrySchema>

export function registryFile(home: string, mesh: string, peerId: string): string {
  return join(paths.run(home, mesh), `${peerId}.json`)
}

/** The control socket's path: short, because sun_path holds only ~107 bytes. */
export function controlSocketPath(home: string, mesh: string, peerId: string): string {
  return join(paths.run(home, mesh), `${peerId.slice(-12)}.sock`)
}

export async function register(home: string, e: RegistryEntry): Promise<void> {
  await writeFileAtomic(registryFile(home, e.mesh, e.peerId), `${JSON.stringify(e)}\n`)
}

export async function unregister(home: string, mesh: string, peerId: string, incarnation: number): Promise<void> {
  const file = registryFile(home, mesh, peerId)
  const current = await readEntry(file)
  // a newer incarnation of the same session may already have written its own entry
  if (current == null || current.incarnation === incarnation) await rm(file, { force: true })
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readEntry(file: string): Promise<RegistryEntry | undefined> {
  const text = await readFileOrUndefined(file)
  if (text == null) return undefined
  try {
    return RegistryEntrySchema.parse(JSON.parse(text))
  } catch {
    return undefined
  }
}

/** Live entries of a mesh; stale ones (dead pid, unreadable) are removed on the way. */
export async function listRunning(home: string, mesh: string): Promise<RegistryEntry[]> {
  const dir = paths.run(home, mesh)
  assertPrivateTree(home, dir)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: RegistryEntry[] = []
  for (const n of names) {
    if (!n.endsWith('.json')) continue
    const file = join(dir, n)
    assertPrivate(file)
    const e = await readEntry(file)
    if (e == null || !alive(e.pid)) {
      if (e != null) await rm(file, { force: true })
      continue
    }
    out.push(e)
  }
  return out.sort((a, b) => a.startedAt - b.startedAt)
}
