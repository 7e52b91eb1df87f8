/**
 * Glob rules for file reservations (SPEC.md §15.3), with picomatch: globs and paths are relative
 * to the repository root, `/`-separated. A glob without wildcards names a path and everything
 * below it (a file or a directory), so `src/auth` reserves the whole folder.
 */
import picomatch from 'picomatch'
import { InvalidMessageError } from '../errors.js'
import { UNSAFE_CHARS } from '../text.js'
import { MAX_BRACES, MAX_GLOB_LENGTH, MAX_GLOBS, MAX_STARS_PER_SEGMENT } from './constants.js'

const UNSAFE = new RegExp(UNSAFE_CHARS, 'u')

const OPTS = { dot: true, noextglob: true } as const
const matchers = new Map<string, (path: string) => boolean>()

function matcher(glob: string): (path: string) => boolean {
  let m = matchers.get(glob)
  if (m == null) {
    // a bounded cache: globs come from a few dozen reservations at most
    if (matchers.size > 4096) matchers.clear()
    m = picomatch(glob, OPTS)
    matchers.set(glob, m)
  }
  return m
}

export function isPattern(glob: string): boolean {
  return picomatch.scan(glob).isGlob
}

/**
 * Why a glob may not be reserved, or undefined. Besides bounds, this keeps matching fast against
 * any path: picomatch compiles globs to backtracking regular expressions, and several `*` in one
 * path segment cost O(length^stars) on a path made to fail (`*a*a*a*a*a*a*a*a` took 507 s against
 * 120 `a`s). With at most two per segment (besides `**` segments), no `(`, `)` or `|`, extglobs
 * off and no `..`, a 4 095-character path is matched in tens of milliseconds at worst.
 */
export function globProblem(glob: string): string | undefined {
  if (glob === '' || glob.length > MAX_GLOB_LENGTH) return `a glob is 1 to ${MAX_GLOB_LENGTH} characters`
  if (glob.startsWith('/') || glob.includes('..'))
    return `"${glob}" is not inside the repository: globs are relative to its root, without ".."`
  if (UNSAFE.test(glob)) return 'a glob may not hold control or invisible characters'
  if (/[()|]/.test(glob)) return 'a glob may not hold "(", ")" or "|" (use {a,b} for alternatives)'
  if (glob.split('/').some(seg => seg !== '**' && (seg.match(/\*+/g)?.length ?? 0) > MAX_STARS_PER_SEGMENT))
    return `a glob has at most ${MAX_STARS_PER_SEGMENT} "*" in one path segment (besides "**" segments)`
  if ((glob.match(/\{/g)?.length ?? 0) > MAX_BRACES) return `a glob has at most ${MAX_BRACES} {…} groups`
  return undefined
}

/** A local caller's glob made canonical, or a clear error: relative, inside the repository, bounded. */
export function checkGlob(raw: string): string {
  const trimmed = String(raw)
    .trim()
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '')
  // `.` is the repository root: everything in it
  const glob = trimmed === '.' ? '**' : trimmed
  const problem = globProblem(glob)
  if (problem != null) throw new InvalidMessageError(problem)
  return glob
}

export function checkGlobs(globs: readonly string[]): string[] {
  const out = [...new Set(globs.map(checkGlob))]
  if (out.length === 0 || out.length > MAX_GLOBS) throw new InvalidMessageError(`a reservation names 1 to ${MAX_GLOBS} globs`)
  return out
}

/** Does the reservation glob cover the repository-relative path `rel`? */
export function covers(glob: string, rel: string): boolean {
  if (!isPattern(glob)) return rel === glob || rel.startsWith(`${glob}/`)
  return matcher(glob)(rel)
}

/** The literal directory a pattern starts with ('' for one that starts with a wildcard). */
function base(glob: string): string {
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
export function overlaps(a: string, b: string): boolean {
  if (a === b) return true
  const pa = isPattern(a)
  const pb = isPattern(b)
  if (!pa && !pb) return nested(a, b)
  if (!pa) return covers(b, a) || nested(a, base(b))
  if (!pb) return covers(a, b) || nested(b, base(a))
  return nested(base(a), base(b))
}
