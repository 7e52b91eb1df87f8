/** `claudemesh task create|list|show|claim|update|complete|watch|unwatch`: the task board through a running local node (SPEC.md §14.6). */
import type { ClaimResult, Task } from '@claudemesh/node/client'
import { TASK_PRIORITIES, TASK_STATUSES } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { ago, esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean }
type FieldFlags = { body?: string; assignee?: string; priority?: string; deps?: string }

const list = (s: string | undefined): string[] | undefined =>
  s
    ?.split(',')
    .map(x => x.trim())
    .filter(Boolean)

function fields(o: FieldFlags): Record<string, unknown> {
  if (o.priority != null && !(TASK_PRIORITIES as readonly string[]).includes(o.priority))
    throw new UsageError(`invalid priority "${o.priority}": use ${TASK_PRIORITIES.join(', ')}`)
  return { body: o.body, assignee: o.assignee, priority: o.priority, deps: list(o.deps) }
}

const withFieldFlags = (cmd: Command): Command =>
  cmd
    .option('--body <text>', 'details')
    .option('--assignee <who>', 'a peer (name, handle or id), @group, or "open"')
    .option('--priority <p>', TASK_PRIORITIES.join(', '))
    .option('--deps <ids>', 'comma-separated ids of tasks that must be done first')

function holderText(t: Task): string {
  if (t.status !== 'open') return t.status
  if (t.holder != null)
    return `held by ${t.holder.slice(-10)} (lease ${Math.max(0, Math.round((t.lease?.expiresAt ?? 0) - Date.now()) / 1000).toFixed(0)}s)`
  if (t.blockedBy.length > 0) return `blocked by ${t.blockedBy.join(',')}`
  return 'open'
}

function showTask(t: Task): void {
  out(
    [
      `${esc(t.id)}  [${esc(t.priority)}]  ${esc(t.title)}`,
      `state     ${esc(holderText(t))}`,
      `assignee  ${esc(t.assignee) || 'anyone'}`,
      ...(t.deps.length > 0 ? [`deps      ${esc(t.deps.join(', '))}`] : []),
      `created   ${ago(t.createdAt)} by ${esc(t.createdBy.slice(-10))}`,
      `watchers  ${t.watchers.length > 0 ? esc(t.watchers.map(w => w.slice(-10)).join(', ')) : 'none'}`,
      ...(t.body !== '' ? [`\n  ${esc(t.body, true).replace(/\n/g, '\n  ')}`] : []),
      ...(t.result != null && t.result !== '' ? [`result\n  ${esc(t.result, true).replace(/\n/g, '\n  ')}`] : [])
    ].join('\n')
  )
}

export function taskCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const task = program.command('task').description("the mesh's task board: create, list, claim with a lease, update, complete")
  withFieldFlags(
    addPickFlags(
      task.command('create <title...>').description('create a task (you watch it: told when others claim, complete, reopen or cancel it)')
    )
  )
    .option('--no-watch', 'do not watch the task')
    .action(async (words: string[], o: Flags & FieldFlags & { watch: boolean }) => {
      const r = await callNode<{ task: Task }>(o, env, 'task.create', { title: words.join(' '), ...fields(o), watch: o.watch })
      if (o.json === true) return outJson(r.task)
      out(r.task.id)
    })
  addPickFlags(task.command('list').description('list tasks, highest priority first'))
    .option('--status <s>', TASK_STATUSES.join(', '))
    .option('--assignee <who>', 'only tasks assigned to this peer, @group or "open"')
    .option('--holder <who>', 'only tasks this peer holds ("me" for yours)')
    .option('--claimable', 'only open tasks nobody holds and nothing blocks')
    .option('--limit <n>', 'at most n tasks', '100')
    .action(async (o: Flags & { status?: string; assignee?: string; holder?: string; claimable?: boolean; limit: string }) => {
      const limit = Number(o.limit)
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit takes a whole number from 1 to 100000')
      if (o.status != null && !(TASK_STATUSES as readonly string[]).includes(o.status))
        throw new UsageError(`invalid status "${o.status}": use ${TASK_STATUSES.join(', ')}`)
      const r = await callNode<{ tasks: Task[] }>(o, env, 'task.list', {
        status: o.status,
        assignee: o.assignee,
        holder: o.holder,
        claimable: o.claimable,
        limit
      })
      if (o.json === true) return outJson(r.tasks)
      if (r.tasks.length === 0) return out('no tasks')
      out(
        table([
          ['ID', 'PRI', 'STATE', 'ASSIGNEE', 'TITLE'],
          ...r.tasks.map(t => [t.id, t.priority, holderText(t), t.assignee || '-', t.title.slice(0, 80)])
        ])
      )
    })
  addPickFlags(task.command('show <id>').description('one task in full')).action(async (id: string, o: Flags) => {
    const r = await callNode<{ task: Task }>(o, env, 'task.get', { id })
    if (o.json === true) return outJson(r.task)
    showTask(r.task)
  })
  addPickFlags(task.command('claim <id>').description('claim a task with a lease, renewed while this node runs'))
    .option('--ttl <seconds>', 'lease length in seconds', '300')
    .action(async (id: string, o: Flags & { ttl: string }) => {
      const ttl = Number(o.ttl)
      if (!Number.isFinite(ttl) || ttl < 1 || ttl > 86_400) throw new UsageError('--ttl takes seconds from 1 to 86400')
      const r = await callNode<ClaimResult>(o, env, 'task.claim', { id, ttlMs: Math.round(ttl * 1000) })
      if (o.json === true) outJson(r)
      else if (r.won)
        out(`claimed ${r.task.id} until ${new Date(r.task.lease?.expiresAt ?? 0).toISOString()} (renewed while this node runs)`)
      if (!r.won) {
        if (o.json !== true) throw new Error(`task ${r.task.id}: a concurrent claim by ${r.task.lease?.claimant ?? 'another member'} won`)
        process.exitCode = 1
      }
    })
  withFieldFlags(addPickFlags(task.command('update <id>').description('change a task, reopen, cancel or release it')))
    .option('--title <title>', 'a new title')
    .option('--reopen', 'reopen a done or cancelled task')
    .option('--cancel', 'cancel the task')
    .option('--release', 'let go of your claim')
    .action(async (id: string, o: Flags & FieldFlags & { title?: string; reopen?: boolean; cancel?: boolean; release?: boolean }) => {
      if (o.reopen === true && o.cancel === true) throw new UsageError('--reopen and --cancel exclude each other')
      const status = o.reopen === true ? 'open' : o.cancel === true ? 'cancelled' : undefined
      const r = await callNode<{ task: Task }>(o, env, 'task.update', { id, title: o.title, ...fields(o), status, release: o.release })
      if (o.json === true) return outJson(r.task)
      out(`${r.task.id}: ${holderText(r.task)}`)
    })
  for (const [verb, on] of [
    ['watch', true],
    ['unwatch', false]
  ] as const) {
    addPickFlags(
      task
        .command(`${verb} <id>`)
        .description(
          on ? 'be told when others claim, complete, reopen or cancel the task, or its lease ends' : 'stop being told about the task'
        )
    ).action(async (id: string, o: Flags) => {
      const r = await callNode<{ task: Task }>(o, env, 'task.update', { id, watch: on })
      if (o.json === true) return outJson(r.task)
      out(`${r.task.id}: ${on ? 'watching' : 'not watching'}`)
    })
  }
  addPickFlags(task.command('complete <id> [result...]').description('mark a task done, with a result')).action(
    async (id: string, words: string[], o: Flags) => {
      const r = await callNode<{ task: Task }>(o, env, 'task.complete', { id, result: words.join(' ') })
      if (o.json === true) return outJson(r.task)
      out(`${r.task.id}: done`)
    }
  )
}
