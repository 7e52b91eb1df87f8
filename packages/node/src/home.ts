/**
 * Everything claudemesh writes lives under `$CLAUDEMESH_HOME` (default `~/.claudemesh`):
 * directories 0700, secret files 0600, written atomically (temp file, fsync, rename) so a
 * crash never leaves half a key file. Names that become path segments are validated so a
 * mesh or session name can never escape the home.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { InvalidNameError } from './errors.js'

export function homeDir (env: NodeJS.ProcessEnv = process.env): string {
  const h = env.CLAUDEMESH_HOME
  return resolve(h != null && h !== '' ? h : join(homedir(), '.claudemesh'))
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** A mesh name: 1–64 of `[A-Za-z0-9._-]`, not starting with a dot or dash, never `..`. */
export function validateMeshName (name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new InvalidNameError(`invalid mesh name "${name}": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`)
  }
  return name
}

/** A Claude Code session id is a UUID; anything else is refused before it touches a path. */
export function validateSessionId (id: string): string {
  if (!UUID.test(id)) throw new InvalidNameError(`invalid session id "${id}": expected a UUID`)
  return id.toLowerCase()
}

export const paths = {
  meshes: (home: string) => join(home, 'meshes'),
  mesh: (home: string, mesh: string) => join(home, 'meshes', `${validateMeshName(mesh)}.json`),
  sessionKey: (home: string, mesh: string, session: string) =>
    join(home, 'sessions', validateMeshName(mesh), `${validateSessionId(session)}.json`),
  data: (home: string, mesh: string, session: string) =>
    join(home, 'data', validateMeshName(mesh), validateSessionId(session)),
  run: (home: string, mesh: string) => join(home, 'run', validateMeshName(mesh))
}

/** Names of the meshes in a home, without loading them (cheap: for CLI verbs and hooks). */
export async function listMeshNames (home: string): Promise<string[]> {
  try {
    return (await readdir(join(home, 'meshes'))).filter(n => n.endsWith('.json')).map(n => n.slice(0, -'.json'.length)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

export async function ensureDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
}

/** Write `data` to `file` atomically with `mode`; the directory is created 0700. */
export async function writeFileAtomic (file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
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
export async function readFileOrUndefined (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
