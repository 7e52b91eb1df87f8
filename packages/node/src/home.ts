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
  /** beside the session's store, not in LevelDB's own directory (SPEC.md §11.3) */
  snapshots: (home: string, mesh: string, session: string) => snapshotsBeside(paths.data(home, mesh, session)),
  run: (home: string, mesh: string) => join(home, 'run', validateMeshName(mesh))
}

/**
 * The directory of a store's snapshot files: a sibling of the store's directory, `<dir>.snapshots`
 * (SPEC.md §3.1, §11.3). Only the process holding the store's lock reads or writes it.
 */
export function snapshotsBeside(storeDir: string): string {
  return `${storeDir}.snapshots`
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
  if (st != null) checkPrivate(path, st)
  return st
}

/** assertPrivate's rule on stats already taken (of an open file: no second look-up of the path). */
function checkPrivate(path: string, st: Stats): void {
  const uid = process.getuid?.()
  if (uid == null) return // no uids to compare (Windows)
  const fix = 'remove it, or set CLAUDEMESH_HOME to a directory of your own'
  if (st.uid !== uid) throw new UnsafePathError(`${path} is owned by uid ${st.uid}, not by you (uid ${uid}): ${fix}`)
  if (!st.isSocket() && (st.mode & 0o022) !== 0)
    throw new UnsafePathError(
      `${path} is writable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod go-w it, ${fix}`
    )
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

export interface AtomicWriteOptions {
  /**
   * Durable (default): the file is fsynced before the rename and its directory after it, so once
   * the promise resolves a crash leaves the new file. `false`: no fsync; still atomic (a reader
   * sees the old file or the new one, never half of one), but a crash may lose the write.
   */
  sync?: boolean
}

/**
 * Write `data` (its parts one after another) to `file` atomically with `mode`; the directory is
 * created 0700. The temp file `<file>.<12 hex>.tmp` is created exclusively, and removed when
 * anything fails.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array | readonly Uint8Array[],
  mode = 0o600,
  opts: AtomicWriteOptions = {}
): Promise<void> {
  const sync = opts.sync !== false
  await ensureDir(dirname(file))
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', mode)
  try {
    try {
      // a handle's writeFile writes from where the last one stopped, whole
      for (const part of typeof data === 'string' || data instanceof Uint8Array ? [data] : data) await fh.writeFile(part)
      if (sync) await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  if (sync) await syncDir(dirname(file))
}

/** fsync a directory, so a rename in it survives a crash (not on Windows, where a directory does not open). */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * A whole file read into one buffer of its size (no growing, no concatenation), or undefined
 * when it does not exist. Refused: a file over `max` bytes (before anything is allocated), one
 * that is not a regular file, or not private (assertPrivate's rule, on the open file), or one
 * whose size changed while it was read.
 */
export async function readFileBytes(file: string, max: number): Promise<Uint8Array | undefined> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new UnsafePathError(`${file} is not a regular file`)
    checkPrivate(file, st)
    if (st.size > max) throw new Error(`${file} has ${st.size} bytes, over the ${max}-byte limit`)
    // not zero-filled: every byte is read over below, or the read is refused
    const buf = Buffer.allocUnsafeSlow(st.size)
    let at = 0
    while (at < st.size) {
      const { bytesRead } = await fh.read(buf, at, st.size - at, at)
      if (bytesRead === 0) break
      at += bytesRead
    }
    if (at !== st.size || (await fh.stat()).size !== st.size) throw new Error(`${file} changed while it was read`)
    return new Uint8Array(buf.buffer, buf.byteOffset, st.size)
  } finally {
    await fh.close()
  }
}

/** Remove the temp files (`<name>.<12 hex>.tmp`) a crash left in `dir` during a writeFileAtomic; only for a directory no one else writes. */
export async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  for (const n of names) if (/\.[0-9a-f]{12}\.tmp$/.test(n)) await rm(join(dir, n), { force: true })
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
