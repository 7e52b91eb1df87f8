/**
 * Which reservations stop a session from changing a file (SPEC.md §15.3). Pure: the live
 * reservations, the file and who asks. A file is blocked for a viewer by another holder's
 * exclusive reservation that covers it, unless the viewer's own reservation covering the file is
 * older (earlier `since`, then the smaller PeerId): of two overlapping reservations made before
 * either holder saw the other's, the earlier stands everywhere.
 */
import { relative, sep } from 'node:path'
import type { ReservationMode } from './constants.js'
import { covers } from './globs.js'
import type { RepoRef } from './repo.js'

/** A reservation as callers see it. */
export interface Reservation {
  holder: string
  /** the holder's display name as it wrote it */
  name: string
  repo: string
  branch: string
  globs: string[]
  mode: ReservationMode
  reason: string
  since: number
  expiresAt: number
  self: boolean
}

/** The path of `abs` relative to the root a reservation in `r`'s repository names, or undefined when `abs` is not in it. */
export function inRepo(r: Pick<Reservation, 'repo' | 'branch'>, where: RepoRef, abs: string): string | undefined {
  if (where.git) return r.repo === where.repo && r.branch === where.branch ? below(where.root, abs) : undefined
  // outside git the identity is `file://<host><dir>`: a reservation made in any folder above the file covers it
  const host = where.repo.slice(0, where.repo.length - where.root.length)
  if (r.branch !== '' || !r.repo.startsWith(host)) return undefined
  return below(r.repo.slice(host.length), abs)
}

function below(root: string, abs: string): string | undefined {
  const rel = relative(root, abs)
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return undefined
  return rel.split(sep).join('/')
}

/** Does `a` stand before `b`? The earlier reservation, then the smaller holder id. */
export function before(a: Reservation, b: Reservation): boolean {
  return a.since < b.since || (a.since === b.since && a.holder < b.holder)
}

/** Of `live` reservations (all in the file's repository), those that stop `viewer` from changing `abs`. */
export function blockersOf(live: Reservation[], where: RepoRef, abs: string, viewer: string | null): Reservation[] {
  const covering = live.filter(r => {
    const rel = inRepo(r, where, abs)
    return rel != null && r.globs.some(g => covers(g, rel))
  })
  const mine = covering.filter(r => r.holder === viewer)
  return covering.filter(r => r.holder !== viewer && r.mode === 'exclusive' && !mine.some(m => before(m, r)))
}
