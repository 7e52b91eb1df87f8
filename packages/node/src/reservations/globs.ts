/**
 * Glob rules for file reservations (SPEC.md §15.3), with picomatch: globs and paths are relative
 * to the repository root, `/`-separated. A glob without wildcards names a path and everything
 * below it (a file or a directory), so `src/auth` reserves the whole folder.
 */
import picomatch from 'picomatch'
import { InvalidMessageError } from '../errors.js'
import { UNSAFE_CHARS } from '../text.js'
import { MAX_GLOB_LENGTH, MAX_GLOBS } from './constants.js'

const UNSAFE = new RegExp(UNSAFE_CHARS, 'u')

const OPTS = { dot: true } as const
const matchers = new Map<string, (path: string) => boolean>()

function matcher (glob: string): (path: string) => boolean {
  let m = matchers.get(glob)
  if (m == null) {
    // a bounded cache: globs come from a few dozen reservations at most
    if (matchers.size > 4096) matchers.clear()
    m = picomatch(glob, OPTS)
    matchers.set(glob, m)
  }
  return m
}

export function isPattern (glob: string): boolean {
  return picomatch.scan(glob).isGlob
}

/** A local caller's glob made canonical, or a clear error: relative, inside the repository, bounded. */
export function checkGlob (raw: string): string {
  const trimmed = String(raw).trim().replace(/^(\.\/)+/, '').replace(/\/+$/, '')
  // `.` is the repository root: everything in it
  const glob = trimmed === '.' ? '**' : trimmed
  if (glob === '' || glob.length > MAX_GLOB_LENGTH) throw new InvalidMessageError(`a glob is 1 to ${MAX_GLOB_LENGTH} characters`)
  if (glob.startsWith('/') || glob.split('/').some(s => s === '..')) throw new InvalidMessageError(`"${glob}" is not inside the repository: globs are relative to its root, without ".."`)
  if (UNSAFE.test(glob)) throw new InvalidMessageError('a glob may not hold control or invisible characters')
  return glob
}

export function checkGlobs (globs: readonly string[]): string[] {
  const out = [...new Set(globs.map(checkGlob))]
  if (out.length === 0 || out.length > MAX_GLOBS) throw new InvalidMessageError(`a reservation names 1 to ${MAX_GLOBS} globs`)
  return out
}

/** Does the reservation glob cover the repository-relative path `rel`? */
export function covers (glob: string, rel: string): boolean {
  if (!isPattern(glob)) return rel === glob || rel.startsWith(`${glob}/`)
  return matcher(glob)(rel)
}

/** The literal directory a pattern starts with ('' for one that starts with a wildcard). */
function base (glob: string): string {
  return isPattern(glob) ? picomatch.scan(glob).base : glob
}

/** One directory is the other or lies below it ('' is the root, above everything). */
const nested = (a: string, b: string): boolean => a === '' || b === '' || a === b || b.startsWith(`${a}/`) || a.startsWith(`${b}/`)

/**
 * Could some path be covered by both globs? Exact for a literal against anything (the literal,
 * and paths below it, are tested against the other); conservative for two patterns: they
 * overlap unless their literal base directories are disjoint (`src/**` and `docs/*.md` do not;
 * `*.md` and `src/**` are taken to).
 */
export function overlaps (a: string, b: string): boolean {
  if (a === b) return true
  const pa = isPattern(a)
  const pb = isPattern(b)
  if (!pa && !pb) return nested(a, b)
  if (!pa) return covers(b, a) || nested(a, base(b))
  if (!pb) return covers(a, b) || nested(b, base(a))
  return nested(base(a), base(b))
}
