/**
 * The registry of running nodes under a shared home: `$CLAUDEMESH_HOME/run/<mesh>/<peer>.json`,
 * one file per live node, written when it listens and removed when it stops. Nodes that share
 * a home find each other through it with no flags; CLI verbs find their node's control socket
 * through it. A file whose pid is gone is stale and removed by whoever notices.
 */
import { readFileSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as z from 'zod/mini'
import { assertPrivate, assertPrivateTree, paths, readFileOrUndefined, writeFileAtomic } from '../home.js'

export const RegistryEntrySchema = z.object({
  v: z.literal(1),
  peerId: z.string(),
  pid: z.int(),
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

/** Written whole (atomic) but not synced: an entry describes a running process, which a crash ends too (SPEC.md §5.1). */
export async function register(home: string, e: RegistryEntry): Promise<void> {
  await writeFileAtomic(registryFile(home, e.mesh, e.peerId), `${JSON.stringify(e)}\n`, 0o600, { sync: false })
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
  return parseEntry(await readFileOrUndefined(file))
}

function parseEntry(text: string | undefined): RegistryEntry | undefined {
  if (text == null) return undefined
  try {
    return RegistryEntrySchema.parse(JSON.parse(text))
  } catch {
    return undefined
  }
}

/**
 * Per registry directory, each file's entry as last read, with the stats it was read at. An
 * entry is written whole with a rename (a new inode), so a file whose inode, mtime and size
 * are unchanged holds the same entry: a rescan reads only the files that changed. Nodes
 * rescan when any entry appears or goes, so without this a home of N starting nodes read
 * O(N²) files, each an open, a stat, a read and a close through the thread pool.
 */
type Read = { ino: number; mtimeMs: number; size: number; entry: RegistryEntry | undefined }
const seen = new Map<string, Map<string, Read>>()

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
  const before = seen.get(dir)
  const now = new Map<string, Read>()
  const out: RegistryEntry[] = []
  for (const n of names) {
    if (!n.endsWith('.json')) continue
    const file = join(dir, n)
    const st = assertPrivate(file)
    if (st == null) continue // removed since readdir
    const known = before?.get(n)
    // a small local file: read at once rather than as four thread-pool round trips
    const rec =
      known != null && known.ino === st.ino && known.mtimeMs === st.mtimeMs && known.size === st.size
        ? known
        : { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, entry: parseEntry(readTextSync(file)) }
    const e = rec.entry
    if (e == null || !alive(e.pid)) {
      if (e != null) await rm(file, { force: true })
      continue
    }
    now.set(n, rec)
    out.push(e)
  }
  seen.set(dir, now)
  return out.sort((a, b) => a.startedAt - b.startedAt)
}

function readTextSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
