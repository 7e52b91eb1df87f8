/**
 * `claudemesh file share <path> --to <peers>`, `file get <id> [dest]`, `file ls`, `file unpin <id>`
 * (SPEC.md §16.7). `get` draws a progress bar on stderr when stderr is a terminal and --json
 * is not given, by polling `file.progress` on the same control connection while `file.get` runs.
 */
import { resolve } from 'node:path'
import { ControlClient, type FileProgress, type FileView, type GetResult, type ShareResult } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { ago, esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, pickNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean }
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`

/** One line of progress: `[#####.....]  42%  21.0/50.0 MB  name`. */
export function progressLine(p: FileProgress, width = 30): string {
  const frac = p.chunks === 0 ? 0 : p.have / p.chunks
  const full = Math.round(frac * width)
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${mb(Math.min(p.size, p.have * (p.size / Math.max(1, p.chunks))))}/${mb(p.size)}  ${esc(p.name)}`
}

export function fileCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const file = program.command('file').description('share files with peers: sealed, chunked, resumable')
  addPickFlags(file.command('share <path>').description('share a file and announce it to peers or @groups'))
    .requiredOption('--to <peers>', 'recipients, comma-separated: names, ids, @group, @all')
    .option('--message <text>', 'a note added to the announcement')
    .action(async (path: string, o: Flags & { to: string; message?: string }) => {
      const to = o.to
        .split(',')
        .map(t => t.trim())
        .filter(Boolean)
      if (to.length === 0) throw new UsageError('--to names no recipient')
      const r = await callNode<ShareResult>(o, env, 'file.share', { path: resolve(path), to, message: o.message })
      if (o.json === true) return outJson(r)
      out(`${r.file.id}  ${r.file.name}  ${mb(r.file.size)}  sent to ${r.sent.map(s => s.name || s.to).join(', ')}`)
    })
  addPickFlags(
    file.command('get <id> [dest]').description('fetch a shared file (resumes an interrupted fetch); dest defaults to its name here')
  )
    .option('--no-pin', 'do not keep serving it to other members afterwards')
    .action(async (id: string, dest: string | undefined, o: Flags & { pin: boolean }) => get(id, dest, o, env))
  addPickFlags(file.command('ls').description('the files this session holds')).action(async (o: Flags) => {
    const r = await callNode<{ files: FileView[]; maxFileBytes: number }>(o, env, 'file.list')
    if (o.json === true) return outJson(r)
    if (r.files.length === 0) return out('no files')
    out(
      table([
        ['ID', 'NAME', 'SIZE', 'STATE', 'ROLE', 'FROM', 'WHEN'],
        ...r.files.map(f => [
          f.id.slice(0, 16),
          f.name,
          mb(f.size),
          f.state === 'complete' ? 'complete' : `${f.have}/${f.chunks}`,
          f.role,
          f.fromName || f.from.slice(-10),
          ago(f.at)
        ])
      ])
    )
  })
  addPickFlags(file.command('unpin <id>').description('stop holding a file (its chunks are deleted here)')).action(
    async (id: string, o: Flags) => {
      const r = await callNode<{ unpinned: boolean }>(o, env, 'file.unpin', { id })
      if (o.json === true) return outJson(r)
      out(r.unpinned ? `unpinned ${id}` : `this session does not hold ${id}`)
    }
  )
}

async function get(id: string, dest: string | undefined, o: Flags & { pin: boolean }, env: NodeJS.ProcessEnv): Promise<void> {
  const entry = await pickNode(o, env)
  const client = await ControlClient.connect(entry.control)
  const tty = process.stderr.isTTY === true && o.json !== true
  let timer: ReturnType<typeof setInterval> | undefined
  try {
    if (tty) {
      timer = setInterval(() => {
        void client.call<{ progress: FileProgress | null }>('file.progress', { id }).then(
          r => {
            if (r.progress != null && r.progress.chunks > 0) process.stderr.write(`\r${progressLine(r.progress)}\x1b[K`)
          },
          () => {}
        )
      }, 200)
    }
    const r = await client.call<GetResult>('file.get', {
      id,
      dest: dest == null ? undefined : resolve(dest),
      cwd: process.cwd(),
      pin: o.pin
    })
    if (tty)
      process.stderr.write(
        `\r${progressLine({ id, name: r.file.name, size: r.file.size, chunks: r.file.chunks, have: r.file.chunks, fetchedBytes: r.fetchedBytes })}\x1b[K\n`
      )
    if (o.json === true) return outJson(r)
    out(
      `${r.path}  ${mb(r.file.size)}  fetched ${mb(r.fetchedBytes)}${r.reusedChunks > 0 ? `, ${r.reusedChunks} chunk(s) already here` : ''}`
    )
  } finally {
    clearInterval(timer)
    client.close()
  }
}
