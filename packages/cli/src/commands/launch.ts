/**
 * `claudemesh launch`: start Claude Code joined to the mesh. It picks the session's stable
 * UUID (fresh, --resume, --continue), hands Claude our MCP server, hooks and tool permission
 * for this launch only, runs claude in the foreground and returns its exit code; the session's
 * node lives in the MCP server process and leaves the mesh when claude exits.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { basename } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { listMeshNames, listRunning, validateSessionId } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { claudeBin, hookSettings, newestSession, selfCommand, shellQuote, TOOL_PATTERN } from '../claude.js'
import { checkMessageMode, checkRelays, home, LIMIT_HELP, limitFlags, parseGroups } from '../options.js'
import { note, UsageError } from '../output.js'

export interface LaunchFlags {
  mesh?: string
  name?: string
  role?: string
  groups?: string
  messageMode?: string
  bootstrap?: string[]
  relay?: string[]
  limit?: string[]
  resume?: string
  continue?: boolean
  channels?: boolean
  yes?: boolean
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

/** Everything claude is started with, for a given session. Pure: tested on its own. */
export function claudeArgs(o: {
  session: string
  resume: boolean
  mesh: string
  home: string
  name: string
  role?: string
  groups?: string
  mode?: string
  bootstrap: string[]
  relays?: string[]
  limits?: string[]
  channels: boolean
  passthrough: string[]
}): string[] {
  const [node, bin] = selfCommand() as [string, string]
  const mcpArgs = [bin, 'mcp', '--mesh', o.mesh, '--session', o.session, '--name', o.name]
  if (o.role != null && o.role !== '') mcpArgs.push('--role', o.role)
  if (o.groups != null && o.groups !== '') mcpArgs.push('--groups', o.groups)
  if (o.mode != null) mcpArgs.push('--message-mode', o.mode)
  for (const b of o.bootstrap) mcpArgs.push('--bootstrap', b)
  for (const r of o.relays ?? []) mcpArgs.push('--relay', r)
  for (const l of o.limits ?? []) mcpArgs.push('--limit', l)
  if (o.channels) mcpArgs.push('--channels')
  const mcpConfig = { mcpServers: { claudemesh: { type: 'stdio', command: node, args: mcpArgs, env: { CLAUDEMESH_HOME: o.home } } } }
  const prefix = `CLAUDEMESH_HOME=${shellQuote(o.home)} ${shellQuote(node)} ${shellQuote(bin)}`
  const print = o.passthrough.some(a => a === '-p' || a === '--print')
  const settings = { hooks: hookSettings(prefix, !print), permissions: { allow: [TOOL_PATTERN] } }
  const args = [
    ...(o.resume ? ['--resume', o.session] : ['--session-id', o.session]),
    '--mcp-config',
    JSON.stringify(mcpConfig),
    '--settings',
    JSON.stringify(settings),
    '--allowedTools',
    TOOL_PATTERN
  ]
  if (o.channels) args.push('--dangerously-load-development-channels', 'server:claudemesh')
  return [...args, ...o.passthrough]
}

async function wizard(flags: LaunchFlags, meshes: string[], cwd: string): Promise<LaunchFlags> {
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const ask = async (q: string, def = ''): Promise<string> => (await rl.question(`${q}${def !== '' ? ` [${def}]` : ''}: `)).trim() || def
    const out = { ...flags }
    if (out.mesh == null && meshes.length > 1) out.mesh = await ask(`mesh (${meshes.join(', ')})`, meshes[0])
    out.name ??= await ask('your name in the mesh', basename(cwd))
    out.role ??= await ask('role (optional)')
    out.groups ??= await ask('groups, e.g. "frontend:lead,reviewers" (optional)')
    out.messageMode ??= await ask('message mode: push, inbox or off', 'push')
    return out
  } finally {
    rl.close()
  }
}

export function launchCommand(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('launch')
    .description('start Claude Code joined to the mesh (arguments after -- go to claude)')
    .option('--mesh <mesh>', 'mesh name (default: the only mesh)')
    .option('--name <name>', 'your display name in the mesh (default: the directory name)')
    .option('--role <role>', 'your role')
    .option('--groups <groups>', 'groups with optional roles, e.g. "frontend:lead,reviewers"')
    .option('--message-mode <mode>', 'push, inbox or off')
    .option('--bootstrap <multiaddr>', 'peer to dial (repeatable)', collect)
    .option('--relay <multiaddr>', "relay to use besides the mesh's, with /p2p/<id> (repeatable)", collect)
    .option('--limit <name=value>', LIMIT_HELP, collect)
    .option('--resume <uuid>', 'resume this Claude session (keeps its mesh identity)')
    .option('--continue', 'resume the newest session of this directory')
    .option('--channels', 'also push through Claude Code channels (research preview; needs claude.ai login)')
    .option('-y, --yes', 'no questions: defaults for everything not given')
    .argument('[claudeArgs...]', 'passed to claude after --')
    .action(async (passthrough: string[], flags: LaunchFlags) => {
      const h = home(env)
      const cwd = process.cwd()
      const meshes = await listMeshNames(h)
      if (meshes.length === 0)
        throw new UsageError(
          `no mesh in ${h}: create one with \`claudemesh mesh create <name>\` or join with \`claudemesh mesh join <token>\``
        )
      if (flags.resume != null && flags.continue === true) throw new UsageError('use --resume or --continue, not both')
      const o = process.stdin.isTTY && flags.yes !== true ? await wizard(flags, meshes, cwd) : flags
      const mesh = o.mesh ?? (meshes.length === 1 ? meshes[0] : undefined)
      if (mesh == null || !meshes.includes(mesh))
        throw new UsageError(mesh == null ? `several meshes, pick one with --mesh: ${meshes.join(', ')}` : `no mesh "${mesh}" in ${h}`)
      checkMessageMode(o.messageMode)
      parseGroups(o.groups)
      limitFlags(o.limit)
      let session: string
      let resume = false
      if (o.resume != null) {
        try {
          session = validateSessionId(o.resume)
        } catch (err) {
          throw new UsageError((err as Error).message)
        }
        resume = true
      } else if (o.continue === true) {
        const found = await newestSession(cwd, env)
        if (found == null) throw new UsageError(`no earlier Claude session in ${cwd} to continue`)
        session = found
        resume = true
      } else {
        session = randomUUID()
      }
      const args = claudeArgs({
        session,
        resume,
        mesh,
        home: h,
        name: o.name ?? basename(cwd),
        role: o.role,
        groups: o.groups,
        mode: o.messageMode,
        bootstrap: o.bootstrap ?? [],
        relays: checkRelays(o.relay),
        limits: o.limit,
        channels: o.channels === true,
        passthrough
      })
      note(`claudemesh: session ${session} joins mesh "${mesh}" as ${o.name ?? basename(cwd)}`)
      if (o.channels === true)
        note(
          'claudemesh: channels are a research preview (claude.ai login, a server-side flag); if they do not arrive, `claudemesh install` registers the server at user scope, and hooks deliver regardless'
        )
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(claudeBin(env), args, { stdio: 'inherit', env: { ...process.env, ...env, CLAUDEMESH_HOME: h } })
        child.once('error', err => {
          reject(
            new UsageError(
              `cannot start claude (${claudeBin(env)}): ${(err as NodeJS.ErrnoException).code ?? err.message}; install Claude Code or set CLAUDEMESH_CLAUDE_BIN`
            )
          )
        })
        child.once('exit', (c, signal) => {
          resolve(c ?? (signal != null ? 128 : 1))
        })
      })
      await stopSessionNode(h, mesh, session)
      process.exitCode = code
    })
}

/** claude has exited: its MCP server should have left too; make sure the node is gone. */
async function stopSessionNode(h: string, mesh: string, session: string): Promise<void> {
  for (const e of await listRunning(h, mesh)) {
    if (e.session !== session || e.kind !== 'mcp') continue
    try {
      process.kill(e.pid, 'SIGTERM')
    } catch {}
  }
}
