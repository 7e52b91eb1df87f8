/** `claudemesh schedule <to> <message> --at|--in|--cron`, `schedule list`, `schedule cancel <id>` (SPEC.md §18). */
import { PRIORITIES, type ScheduleView } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean }
type AddFlags = Flags & { at?: string; in?: string; cron?: string; priority: string }

const iso = (ms: number | undefined): string => (ms == null ? '-' : new Date(ms).toISOString())

function row(s: ScheduleView): string[] {
  const when = s.cron != null ? `cron ${s.cron}` : 'once'
  return [
    s.id,
    s.to.join(','),
    when,
    s.state === 'active' ? iso(s.next) : s.state,
    String(s.fired),
    s.message.split('\n')[0]?.slice(0, 60) ?? ''
  ]
}

export function scheduleCommands(program: Command, env: NodeJS.ProcessEnv): void {
  // `list` and `cancel` are words of this one command, not subcommands: the options (--json,
  // --name…) then belong to one command whatever their position
  addPickFlags(
    program
      .command('schedule <to> [message...]')
      .description(
        'send a message later or repeatedly ("me" as the target: a reminder to this session); `schedule list [--all]`; `schedule cancel <id>`'
      )
  )
    .option('--at <time>', 'when: an ISO 8601 time, e.g. 2026-05-01T09:00:00Z')
    .option('--in <duration>', 'when: after a duration, e.g. 90s, 10m, 1h30m, 2d')
    .option('--cron <expr>', 'repeatedly: five cron fields, minute first, in this machine\'s time zone, e.g. "*/5 * * * *"')
    .option('--priority <priority>', 'now, next or low', 'next')
    .option('--all', 'with list: also those fired or cancelled in the last 7 days')
    .action(async (to: string, words: string[], o: AddFlags & { all?: boolean }) => {
      if (to === 'list' && words.length === 0) return list(o, env)
      if (to === 'cancel' && words.length === 1) return cancel(words[0] ?? '', o, env)
      if (words.length === 0)
        throw new UsageError(
          'usage: claudemesh schedule <to> <message> (--at TIME | --in DURATION | --cron "EXPR"), schedule list, schedule cancel <id>'
        )
      await add(to, words.join(' '), o, env)
    })
}

async function add(to: string, message: string, o: AddFlags, env: NodeJS.ProcessEnv): Promise<void> {
  if (!(PRIORITIES as readonly string[]).includes(o.priority))
    throw new UsageError(`invalid priority "${o.priority}": use now, next or low`)
  if ([o.at, o.in, o.cron].filter(x => x != null).length !== 1) throw new UsageError('give exactly one of --at, --in or --cron')
  const targets = to
    .split(',')
    .map(t => t.trim())
    .filter(Boolean)
  const r = await callNode<{ schedule: ScheduleView }>(o, env, 'schedule.add', {
    to: targets,
    message,
    priority: o.priority,
    at: o.at,
    in: o.in,
    cron: o.cron
  })
  if (o.json === true) return outJson(r.schedule)
  out(`${r.schedule.id}  ${r.schedule.cron != null ? `cron ${esc(r.schedule.cron)}, next` : 'at'} ${iso(r.schedule.next)}`)
}

async function list(o: Flags & { all?: boolean }, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await callNode<{ schedules: ScheduleView[] }>(o, env, 'schedule.list', { all: o.all === true })
  if (o.json === true) return outJson(r.schedules)
  if (r.schedules.length === 0) return out('no scheduled messages')
  out(table([['ID', 'TO', 'WHEN', 'NEXT', 'FIRED', 'MESSAGE'], ...r.schedules.map(row)]))
}

async function cancel(id: string, o: Flags, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await callNode<{ schedule: ScheduleView }>(o, env, 'schedule.cancel', { id })
  if (o.json === true) return outJson(r.schedule)
  out(`cancelled ${r.schedule.id}`)
}
