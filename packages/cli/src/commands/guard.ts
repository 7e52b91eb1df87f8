/**
 * `claudemesh guard install|uninstall|check` (SPEC.md §15.7): a git pre-commit hook that refuses a
 * commit touching staged paths another live session reserved exclusively. An existing pre-commit
 * hook is kept, run first, and restored on uninstall. Without a running node the check warns and
 * lets the commit through: the mesh cannot be asked.
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { type Blocked, ControlClient, listMeshNames, listRunning, type RegistryEntry, writeFileAtomic } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { selfCommand, shellQuote } from '../claude.js'
import { home } from '../options.js'
import { esc, note, out, outJson, UsageError } from '../output.js'

const MARKER = '# claudemesh guard'
const CHAINED = 'pre-commit.claudemesh-chained'
const BATCH = 10_000

async function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile('git', ['-C', cwd, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err != null) rej(new UsageError(`git ${args[0] ?? ''} failed: ${(stderr || err.message).trim().split('\n')[0] ?? ''}`))
      else res(stdout)
    })
  })
}

async function hooksDir(): Promise<string> {
  const cwd = process.cwd()
  await git(cwd, ['rev-parse', '--show-toplevel']).catch(() => {
    throw new UsageError(`${cwd} is not in a git work tree`)
  })
  return resolve(cwd, (await git(cwd, ['rev-parse', '--git-path', 'hooks'])).trim())
}

function script(env: NodeJS.ProcessEnv): string {
  const [node, bin] = selfCommand() as [string, string]
  const prefix = env.CLAUDEMESH_HOME != null && env.CLAUDEMESH_HOME !== '' ? `CLAUDEMESH_HOME=${shellQuote(home(env))} ` : ''
  return (
    `#!/bin/sh\n${MARKER}: refuses commits that touch files another mesh session reserved; \`claudemesh guard uninstall\` removes it\n` +
    `if [ -x "$(dirname "$0")/${CHAINED}" ]; then "$(dirname "$0")/${CHAINED}" "$@" || exit $?; fi\n` +
    `${prefix}${shellQuote(node)} ${shellQuote(bin)} guard check\n`
  )
}

const read = async (f: string): Promise<string | undefined> => readFile(f, 'utf8').catch(() => undefined)

async function install(env: NodeJS.ProcessEnv): Promise<{ hook: string; chained: boolean }> {
  const dir = await hooksDir()
  await mkdir(dir, { recursive: true })
  const hook = join(dir, 'pre-commit')
  const current = await read(hook)
  if (current != null && !current.includes(MARKER)) {
    if ((await read(join(dir, CHAINED))) != null)
      throw new UsageError(`${join(dir, CHAINED)} already exists: remove or merge it before installing the guard`)
    await rename(hook, join(dir, CHAINED))
  }
  await writeFileAtomic(hook, script(env), 0o755)
  await chmod(hook, 0o755)
  return { hook, chained: (await read(join(dir, CHAINED))) != null }
}

async function uninstall(): Promise<{ hook: string; removed: boolean; restored: boolean }> {
  const dir = await hooksDir()
  const hook = join(dir, 'pre-commit')
  if (!((await read(hook)) ?? '').includes(MARKER)) return { hook, removed: false, restored: false }
  await rm(hook)
  const restored = (await read(join(dir, CHAINED))) != null
  if (restored) await rename(join(dir, CHAINED), hook)
  return { hook, removed: true, restored }
}

/** One node per mesh to ask: this session's (viewer self) where it runs, else any session node (viewer none). */
async function askers(
  env: NodeJS.ProcessEnv,
  session: string | undefined
): Promise<Array<{ entry: RegistryEntry; viewer: 'self' | 'none' }>> {
  const out: Array<{ entry: RegistryEntry; viewer: 'self' | 'none' }> = []
  for (const mesh of await listMeshNames(home(env))) {
    const running = (await listRunning(home(env), mesh)).filter(e => e.kind !== 'relay' && e.kind !== 'courier')
    const mine = session != null ? running.find(e => e.session === session.toLowerCase()) : undefined
    const any = mine ?? running[0]
    if (any != null) out.push({ entry: any, viewer: mine != null ? 'self' : 'none' })
  }
  return out
}

async function check(env: NodeJS.ProcessEnv, o: { session?: string; json?: boolean }): Promise<void> {
  const top = (
    await git(process.cwd(), ['rev-parse', '--show-toplevel']).catch(() => {
      throw new UsageError(`${process.cwd()} is not in a git work tree`)
    })
  ).trim()
  const staged = (await git(top, ['diff', '--cached', '--name-only', '-z', '--no-renames']))
    .split('\0')
    .filter(Boolean)
    .map(p => join(top, p))
  const session = [o.session, env.CLAUDEMESH_SESSION, env.CLAUDE_CODE_SESSION_ID].find(s => s != null && s !== '')
  const nodes = staged.length === 0 ? [] : await askers(env, session)
  if (staged.length > 0 && nodes.length === 0) note('claudemesh guard: no running claudemesh node; reservations not checked')
  const blocked: Blocked[] = []
  for (const { entry, viewer } of nodes) {
    const client = await ControlClient.connect(entry.control)
    try {
      for (let i = 0; i < staged.length; i += BATCH)
        blocked.push(
          ...(await client.call<{ blocked: Blocked[] }>('reservation.check', { paths: staged.slice(i, i + BATCH), viewer })).blocked
        )
    } finally {
      client.close()
    }
  }
  if (o.json === true)
    outJson({ checked: staged.length, asked: nodes.map(n => ({ mesh: n.entry.mesh, name: n.entry.name, viewer: n.viewer })), blocked })
  if (blocked.length === 0) return
  for (const b of blocked) {
    const r = b.by
    note(
      `claudemesh guard: ${esc(b.rel)} is reserved exclusively by "${esc(r.name || r.holder.slice(-10))}" (${r.holder.slice(-10)}) until ${new Date(r.expiresAt).toISOString()}${r.reason !== '' ? `: ${esc(r.reason)}` : ''}`
    )
  }
  note(
    `claudemesh guard: commit refused: ${blocked.length} staged path(s) reserved by other sessions (ask them to release, or commit with --no-verify to override)`
  )
  process.exitCode = 1
}

export function guardCommands(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('guard <action>')
    .description('git pre-commit guard against committing files other sessions reserved: install, uninstall, check')
    .option('--session <uuid>', 'with check: the session committing (default $CLAUDEMESH_SESSION, else $CLAUDE_CODE_SESSION_ID)')
    .option('--json', 'print JSON')
    .action(async (action: string, o: { session?: string; json?: boolean }) => {
      if (action === 'check') return check(env, o)
      if (action === 'install') {
        const r = await install(env)
        if (o.json === true) return outJson(r)
        return out(
          `installed the claudemesh guard in ${esc(r.hook)}${r.chained ? ` (your earlier hook runs first, kept as ${CHAINED})` : ''}`
        )
      }
      if (action === 'uninstall') {
        const r = await uninstall()
        if (o.json === true) return outJson(r)
        return out(
          r.removed
            ? `removed the claudemesh guard from ${esc(r.hook)}${r.restored ? ' and restored your earlier hook' : ''}`
            : `no claudemesh guard in ${esc(r.hook)}`
        )
      }
      throw new UsageError(`unknown guard action "${action}": use install, uninstall or check`)
    })
}
