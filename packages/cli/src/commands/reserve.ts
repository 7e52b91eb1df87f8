/**
 * `claudemesh reserve <glob>...`, `release [<glob>...] [--all]`, `reservations [--path P]`: file
 * reservations in the current directory's repository, through a running local node (SPEC.md §15.6).
 */
import { isAbsolute, resolve } from 'node:path'
import type { Reservation } from '@claudemesh/node/client'
import { MAX_RESERVATION_MS, MIN_RESERVATION_MS } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean }

export function reservationRow(r: Reservation): string[] {
  const left = Math.max(0, Math.round((r.expiresAt - Date.now()) / 60_000))
  return [
    r.self ? `${r.name} (you)` : r.name || r.holder.slice(-10),
    r.holder.slice(-10),
    `${r.repo}${r.branch !== '' ? `@${r.branch}` : ''}`,
    r.globs.join(' '),
    r.mode,
    `${left}m`,
    r.reason
  ]
}

function showAll(rs: Reservation[], none: string): void {
  if (rs.length === 0) out(none)
  else out(table([['HOLDER', 'ID', 'REPOSITORY', 'GLOBS', 'MODE', 'LEFT', 'REASON'], ...rs.map(reservationRow)]))
}

function ttlMs(ttl: string | undefined): number | undefined {
  if (ttl == null) return undefined
  const s = Number(ttl)
  if (!Number.isInteger(s) || s * 1000 < MIN_RESERVATION_MS || s * 1000 > MAX_RESERVATION_MS)
    throw new UsageError(`--ttl takes seconds, ${MIN_RESERVATION_MS / 1000} to ${MAX_RESERVATION_MS / 1000}`)
  return s * 1000
}

export function reserveCommands(program: Command, env: NodeJS.ProcessEnv): void {
  addPickFlags(
    program
      .command('reserve <globs...>')
      .description('reserve files of this repository and branch (globs relative to its root) so other sessions, anywhere, do not edit them')
  )
    .option('--shared', 'announce only: others may reserve the same files shared')
    .option('--ttl <seconds>', 'how long it lasts (default 3600)')
    .option('--reason <text>', 'what you are doing, shown to whoever it stops')
    .action(async (globs: string[], o: Flags & { shared?: boolean; ttl?: string; reason?: string }) => {
      const r = await callNode<{ reservation: Reservation; root: string }>(o, env, 'reservation.reserve', {
        cwd: process.cwd(),
        globs,
        mode: o.shared === true ? 'shared' : 'exclusive',
        ttlMs: ttlMs(o.ttl),
        reason: o.reason
      })
      if (o.json === true) return outJson(r.reservation)
      const x = r.reservation
      out(
        `reserved ${esc(x.globs.join(' '))} (${x.mode}) in ${esc(x.repo)}${x.branch !== '' ? `@${esc(x.branch)}` : ''} until ${new Date(x.expiresAt).toISOString()}`
      )
    })

  addPickFlags(
    program
      .command('release [globs...]')
      .description('release your reservations: these globs, or all of yours in this repository, or with --all everywhere')
  )
    .option('--all', 'every reservation of this session, in every repository')
    .action(async (globs: string[], o: Flags & { all?: boolean }) => {
      if (o.all === true && globs.length > 0) throw new UsageError('release either some globs or --all, not both')
      const r = await callNode<{ released: number; remaining: Reservation[] }>(o, env, 'reservation.release', {
        cwd: o.all === true ? undefined : process.cwd(),
        globs: globs.length > 0 ? globs : undefined,
        all: o.all
      })
      if (o.json === true) return outJson(r)
      out(`released ${r.released} glob(s); ${r.remaining.length} reservation(s) left`)
    })

  addPickFlags(
    program
      .command('reservations')
      .description("live file reservations of the mesh: all, those touching a path (relative: in any repository), or a holder's")
  )
    .option('--path <path>', 'a path or glob; relative ones match in every repository ("who is touching src/auth anywhere?")')
    .option('--holder <peer>', 'a holder (name, id, or "me")')
    .option('--here', 'only this repository and branch')
    .action(async (o: Flags & { path?: string; holder?: string; here?: boolean }) => {
      // "./src" and "../x" mean the caller's directory: make them absolute; a bare relative path is repository-relative
      const path = o.path != null && /^\.\.?(\/|$)/.test(o.path) && !isAbsolute(o.path) ? resolve(o.path) : o.path
      const r = await callNode<{ reservations: Reservation[] }>(o, env, 'reservation.list', {
        path,
        holder: o.holder,
        cwd: o.here === true ? process.cwd() : undefined
      })
      if (o.json === true) return outJson(r.reservations)
      showAll(r.reservations, o.path != null ? `no live reservation touches ${esc(o.path)}` : 'no live reservations')
    })
}
