/**
 * Everything claudemesh writes lives under `$CLAUDEMESH_HOME` (default `~/.claudemesh`):
 * directories 0700, secret files 0600, written atomically (temp file, fsync, rename) so a
 * crash never leaves half a key file. Names that become path segments are validated so a
 * mesh or session name can never escape the home.
 */
import { randomBytes } from 'node:crypto'
import { type Stats, statSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { InvalidNameError, UnsafePathError } from './errors.js'

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  const h = env.CLAUDEMESH_HOME
  return resolve(h != null && h !== '' ? h : join(homedir(), '.claudemesh'))
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** A mesh name: 1–64 of `[A-Za-z0-9._-]`, not starting with a dot or dash, never `..`. */
export function validateMeshName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new InvalidNameError(`invalid mesh name "${name}": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`)
  }
  return name
}

/** A Claude Code session id is a UUID; anything else is refused before it touches a path. */
export function validateSessionId(id: string): string {
  if (!UUID.test(id)) throw new InvalidNameError(`invalid session id "${id}": expected a UUID`)
  return id.toLowerCase()
}

export const paths = {
  meshes: (home: string) => join(home, 'meshes'),
  mesh: (home: string, mesh: string) => join(home, 'meshes', `${validateMeshName(mesh)}.json`),
  sessionKey: (home: string, mesh: string, session: string) =>
    join(home, 'sessions', validateMeshName(mesh), `${validateSessionId(session)}.json`),
  data: (home: string, mesh: string, session: string) => join(home, 'data', validateMeshName(mesh), validateSessionId(session)),
  run: (home: string, mesh: string) => join(home, 'run', validateMeshName(mesh))
}

/** Names of the meshes in a home, without loading them (cheap: for CLI verbs and hooks). */
export async function listMeshNames(home: string): Promise<string[]> {
  try {
    return (await readdir(join(home, 'meshes')))
      .filter(n => n.endsWith('.json'))
      .map(n => n.slice(0, -'.json'.length))
      .sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/**
 * Refuse a path another local user planted or can change (SPEC.md §3.1): one owned by another
 * uid, or (unless a socket) writable by group or others. A home under a shared path (`/tmp/x`)
 * could otherwise hand our `send` to someone else's socket, or our secrets to their directory.
 * A missing path passes: whoever creates it creates it 0700. Returns the path's stats (undefined
 * when missing).
 */
export function assertPrivate(path: string): Stats | undefined {
  const st = statSync(path, { throwIfNoEntry: false })
  const uid = process.getuid?.()
  if (uid == null || st == null) return st // no uids to compare (Windows)
  const fix = 'remove it, or set CLAUDEMESH_HOME to a directory of your own'
  if (st.uid !== uid) throw new UnsafePathError(`${path} is owned by uid ${st.uid}, not by you (uid ${uid}): ${fix}`)
  if (!st.isSocket() && (st.mode & 0o022) !== 0)
    throw new UnsafePathError(
      `${path} is writable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod go-w it, ${fix}`
    )
  return st
}

/** `assertPrivate` on the home and on every directory from it down to `path`. */
export function assertPrivateTree(home: string, path: string): void {
  assertPrivate(home)
  const rel = relative(home, path)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    assertPrivate(path)
    return
  }
  let at = home
  for (const part of rel.split(sep)) {
    at = join(at, part)
    assertPrivate(at)
  }
}

/** The directories a node of `mesh` uses, checked before it reads or writes any of them. */
export function assertPrivateHome(home: string, mesh?: string): void {
  assertPrivateTree(home, paths.meshes(home))
  if (mesh == null) return
  for (const dir of [join(home, 'sessions', validateMeshName(mesh)), join(home, 'data', mesh), paths.run(home, mesh)])
    assertPrivateTree(home, dir)
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  assertPrivate(dir) // mkdir leaves an existing directory as it is
}

/** Write `data` to `file` atomically with `mode`; the directory is created 0700. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await ensureDir(dirname(file))
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** Read a file, or undefined when it does not exist. */
export async function readFileOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
