/**
 * The roles that run a node (`daemon`, `mcp`, `courier`) start from `dist/claudemesh-node.cjs`
 * (scripts/bundle.mjs): the whole CLI as one CommonJS function, compiled through `vm.Script`
 * with V8's code cache. Node 20 has no code cache for ES modules, so the split ES bundle parses
 * ~1.9 MB of source on every start (~100 ms) and compiles each function again as it first runs;
 * from the cache an MCP server answers `initialize` ~150 ms sooner (bench/mcp.mjs).
 *
 * The cache is `$CLAUDEMESH_HOME/cache/<role>-<key>.v8`, one per role (each holds the functions
 * that role ran), keyed by the bundle's path, Node's version and the bundle's size and mtime. A process that found
 * none, or one that was refused, writes its own a few seconds after it started, once the
 * functions its start runs are compiled. V8 checks the source and its flags before it uses one,
 * a SHA-256 in front of the file checks the rest, and anything wrong with a file means
 * compiling from source as before. It is code, so it is read only from a home that
 * `assertPrivate` would pass (ours, not writable by others), and written 0600 into a 0700
 * directory. CLAUDEMESH_CODE_CACHE=0 turns it off.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import vm from 'node:vm'
import { nodeStarted } from '@claudemesh/node/heap'
import { assertPrivate, homeDir } from '@claudemesh/node/home'

const SAVE_AFTER_MS = 3_000
/** a cache larger than this is not ours (the daemon's is ~2.5 MB) */
const MAX_CACHE_BYTES = 64 * 1024 * 1024

type Wrapper = (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string) => void
type Main = (argv: string[]) => Promise<number>

export interface LoadedBundle {
  main: Main
  /** what became of the cache: none to read (or off), this role's used, another role's used, or refused (compiled from source) */
  cache: 'none' | 'used' | 'borrowed' | 'rejected'
  /** write the cache from what has been compiled so far (nothing when there is no cache file) */
  save(): void
}

/** Run the CLI's `main(argv)` from the CommonJS bundle `file`, through the code cache. */
export async function runNodeBundle(file: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const b = loadBundle(file, env.CLAUDEMESH_CODE_CACHE === '0' ? undefined : cacheFile(env, file, argv[0] ?? ''))
  if (b.cache !== 'used')
    setTimeout(() => {
      b.save()
    }, SAVE_AFTER_MS).unref()
  return b.main(argv)
}

/** Compile and run the bundle `file` (a CommonJS function expression), with the code cache `cache` when it is there and private, under the node roles' heap flags (@claudemesh/node/heap). */
export function loadBundle(file: string, cache: string | undefined): LoadedBundle {
  const own = cache != null ? readPrivate(cache) : undefined
  const stored = own ?? (cache != null ? readPrivate(sibling(cache)) : undefined)
  const cachedData = stored != null ? checked(stored) : undefined
  // V8 refuses a code cache written under other flags than it is read under, and a role changes
  // its heap flags during its node's start (nodeStarting, nodeStarted): the cache is read and
  // written under a started node's, whenever the write comes. A cache written under the flags of
  // the moment made every start refuse the last one's when they differed (~130 ms more to join,
  // ~10 MB more RSS); the role sets its start's own once the bundle runs
  nodeStarted()
  const script = new vm.Script(readFileSync(file, 'latin1'), { filename: file, ...(cachedData != null ? { cachedData } : {}) })
  const module = { exports: {} as { main?: Main } }
  ;(script.runInThisContext() as Wrapper)(module.exports, createRequire(file), module, file, dirname(file))
  const main = module.exports.main
  if (typeof main !== 'function') throw new Error(`${file} exports no main()`)
  return {
    main,
    cache:
      stored == null ? 'none' : cachedData == null || script.cachedDataRejected === true ? 'rejected' : own != null ? 'used' : 'borrowed',
    save: () => {
      if (cache == null) return
      nodeStarted() // a start slower than SAVE_AFTER_MS ends with no hold on the young generation
      save(cache, script)
    }
  }
}

/** Where this role's cache for this bundle and this Node lives; undefined when the home is not private. */
export function cacheFile(env: NodeJS.ProcessEnv, file: string, role: string): string | undefined {
  const home = homeDir(env)
  try {
    if (assertPrivate(home) == null) return undefined
  } catch {
    return undefined
  }
  const st = statSync(file)
  // the path first: two installs (a global one, an npx one) each keep theirs, not overwrite each other's
  const where = createHash('sha256').update(file).digest('hex').slice(0, 8)
  const key = `${where}-${process.version}-${process.arch}-${st.size}-${Math.floor(st.mtimeMs)}`
  return join(home, 'cache', `${role.replace(/[^a-z]/g, '')}-${key}.v8`)
}

/**
 * Another role's cache of the same bundle and Node, for a role that has none yet: an `mcp` that
 * has not run long enough to write its own starts from the daemon's, which holds the node's
 * start; what only it runs compiles from source. `''` when there is none.
 */
function sibling(cache: string): string {
  const dir = dirname(cache)
  const name = cache.slice(dir.length + 1)
  const key = name.slice(name.indexOf('-'))
  try {
    const other = readdirSync(dir).find(f => f !== name && f.endsWith(key))
    return other != null ? join(dir, other) : ''
  } catch {
    return ''
  }
}

function readPrivate(file: string): Buffer | undefined {
  if (file === '') return undefined
  try {
    // assertPrivate throws for a file or directory others own or can write
    const st = assertPrivate(file)
    assertPrivate(dirname(file))
    return st == null || st.size > MAX_CACHE_BYTES ? undefined : readFileSync(file)
  } catch {
    return undefined
  }
}

/**
 * The cache's bytes when its SHA-256 (the file's first 32 bytes) matches them. V8 checks a
 * cache's header (its version, flags, source length, payload length) but, in release builds,
 * not a checksum of the code: a flipped bit would run as code.
 */
function checked(stored: Buffer): Buffer | undefined {
  if (stored.byteLength <= 32) return undefined
  const data = stored.subarray(32)
  return createHash('sha256').update(data).digest().equals(stored.subarray(0, 32)) ? data : undefined
}

/** Write the cache atomically (a temp file, then rename) and drop this role's other files. */
function save(file: string, script: vm.Script): void {
  const dir = dirname(file)
  const tmp = `${file}.${process.pid}.tmp`
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    assertPrivate(dir) // mkdir leaves an existing directory as it is
    const data = script.createCachedData()
    writeFileSync(tmp, Buffer.concat([createHash('sha256').update(data).digest(), data]), { mode: 0o600 })
    renameSync(tmp, file)
    // this role's caches of the bundle at this path as it was before, or for another Node, and
    // temp files a crash left
    const [role, where] = file.slice(dir.length + 1).split('-')
    for (const f of readdirSync(dir)) if (f.startsWith(`${role}-${where}-`) && join(dir, f) !== file) rmSync(join(dir, f), { force: true })
  } catch {
    rmSync(tmp, { force: true })
  }
}
