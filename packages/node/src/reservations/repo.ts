/**
 * Repository identity (SPEC.md §15.1): the same repository checked out on two machines, or
 * twice on one, must get the same name, so reservations are keyed by the normalized URL of its
 * `origin` remote (no scheme, user, password, port or `.git`; ssh and https forms agree) and the
 * branch; without a remote by `file://<host><toplevel>`, and outside git by `file://<host><dir>`.
 */
import { execFile } from 'node:child_process'
import { realpath } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, dirname, resolve } from 'node:path'
import { REPO_CACHE_MS } from './constants.js'

export interface RepoRef {
  /** the repository identity */
  repo: string
  /** the checked-out branch; 'HEAD' when detached; '' outside git */
  branch: string
  /** the local directory paths are relative to: the work tree's top level, or the directory itself outside git */
  root: string
  git: boolean
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i
/** `[user@]host:path`, git's scp-like syntax (no scheme, a colon before any slash) */
const SCP = /^(?:[^@/:]+@)?([^@/:]+):(?!\/\/)(.+)$/

export function fileId(host: string, abs: string): string {
  return `file://${host.toLowerCase()}${abs}`
}

/** The identity of a remote URL; `root` resolves a local remote given as a relative path. */
export function normalizeRemote(url: string, localHost: string, root: string): string {
  const u = url.trim()
  let host: string
  let path: string
  if (SCHEME.test(u)) {
    let parsed: URL
    try {
      parsed = new URL(u)
    } catch {
      return u.toLowerCase()
    }
    if (parsed.protocol === 'file:') return fileId(localHost, stripGit(decodeURIComponent(parsed.pathname)))
    host = parsed.hostname
    path = decodeURIComponent(parsed.pathname)
  } else {
    const scp = SCP.exec(u)
    if (scp == null || u.startsWith('/') || u.startsWith('.')) return fileId(localHost, stripGit(resolve(root, u)))
    host = scp[1] ?? ''
    path = scp[2] ?? ''
  }
  // hosts and (on the hosts people use) owner/repo paths are case-insensitive: one spelling
  return `${host}/${stripGit(path.replace(/^\/+/, ''))}`.toLowerCase()
}

function stripGit(p: string): string {
  return p
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '')
}

function git(cwd: string, args: string[]): Promise<string | undefined> {
  // a git hook's environment names its own repository: never let it leak into ours
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_')) env[k] = v
  return new Promise(resolve => {
    execFile('git', ['-C', cwd, ...args], { env, timeout: 5_000, maxBuffer: 64 * 1024 }, (err, stdout) => {
      resolve(err == null ? stdout.trim() : undefined)
    })
  })
}

/** The nearest directory at or above `dir` that exists, with symlinks resolved, and the part below it. */
async function existing(dir: string): Promise<string> {
  let d = resolve(dir)
  const tail: string[] = []
  for (;;) {
    try {
      return resolve(await realpath(d), ...tail.reverse())
    } catch {
      const up = dirname(d)
      if (up === d) return resolve(dir)
      tail.push(basename(d))
      d = up
    }
  }
}

const cache = new Map<string, { ref: RepoRef; at: number }>()

/** The repository that `dir` (which may not exist yet) belongs to, cached for REPO_CACHE_MS. */
export async function repoOf(dir: string, now = Date.now()): Promise<RepoRef> {
  const key = resolve(dir)
  const hit = cache.get(key)
  if (hit != null && now - hit.at < REPO_CACHE_MS) return hit.ref
  const ref = await lookup(key)
  if (cache.size > 1024) cache.clear()
  cache.set(key, { ref, at: now })
  return ref
}

async function lookup(dir: string): Promise<RepoRef> {
  const real = await existing(dir)
  let at = real
  // git -C needs a directory that exists; a new file's folder may not yet
  while (at !== dirname(at)) {
    const top = await git(at, ['rev-parse', '--show-toplevel'])
    if (top != null) return gitRef(await realpath(top).catch(() => top))
    if (
      await realpath(at).then(
        () => true,
        () => false
      )
    )
      break
    at = dirname(at)
  }
  return { repo: fileId(hostname(), real), branch: '', root: real, git: false }
}

async function gitRef(root: string): Promise<RepoRef> {
  const [branch, url] = await Promise.all([
    git(root, ['symbolic-ref', '--short', '-q', 'HEAD']),
    git(root, ['config', '--get', 'remote.origin.url'])
  ])
  const repo = url != null && url !== '' ? normalizeRemote(url, hostname(), root) : fileId(hostname(), root)
  return { repo, branch: branch != null && branch !== '' ? branch : 'HEAD', root, git: true }
}
