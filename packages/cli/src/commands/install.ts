/**
 * `claudemesh install` / `uninstall`: register our MCP server (user scope) and hooks in Claude
 * Code's own config, for sessions started with plain `claude`. Reversible: every file is
 * backed up before it is edited, `install.json` in the home records exactly what was added,
 * and uninstall removes exactly that, leaving whatever else the user changed meanwhile.
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { claudeConfigDir, hookSettings, selfCommand, shellQuote, TOOL_PATTERN } from '../claude.js'
import { home } from '../options.js'
import { out, outJson, UsageError } from '../output.js'

type Json = Record<string, unknown>

/** Where Claude Code keeps user-scope MCP servers: `.claude.json` in the config dir if set, else in HOME. */
export function claudeJsonPath(env: NodeJS.ProcessEnv): string {
  return env.CLAUDE_CONFIG_DIR != null && env.CLAUDE_CONFIG_DIR !== ''
    ? join(env.CLAUDE_CONFIG_DIR, '.claude.json')
    : join(env.HOME ?? '', '.claude.json')
}

export function settingsPath(env: NodeJS.ProcessEnv): string {
  return join(claudeConfigDir(env), 'settings.json')
}

async function readJson(file: string): Promise<Json> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  try {
    const v = JSON.parse(text) as unknown
    if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
    return v as Json
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON (${(err as Error).message}); fix it before installing`)
  }
}

async function backup(h: string, file: string): Promise<string | undefined> {
  const dir = join(h, 'backups')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const to = join(dir, `${file.split('/').pop() ?? 'file'}.${new Date().toISOString().replace(/[:.]/g, '-')}`)
  try {
    await copyFile(file, to)
    return to
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Our hook commands: they all run `<node> <our bin> hook …`. */
function isOurs(command: unknown, bin: string): boolean {
  return typeof command === 'string' && command.includes(shellQuote(bin)) && command.includes(' hook ')
}

export function addHooks(settings: Json, prefix: string): Json {
  const hooks = { ...(settings.hooks as Json | undefined) }
  for (const [event, entries] of Object.entries(hookSettings(prefix))) {
    hooks[event] = [...((hooks[event] as unknown[] | undefined) ?? []), ...(entries as unknown[])]
  }
  const perms = { ...(settings.permissions as Json | undefined) }
  const allow = (perms.allow as string[] | undefined) ?? []
  perms.allow = allow.includes(TOOL_PATTERN) ? allow : [...allow, TOOL_PATTERN]
  return { ...settings, hooks, permissions: perms }
}

export function removeHooks(settings: Json, bin: string, permission: boolean): Json {
  const hooks: Json = {}
  for (const [event, entries] of Object.entries((settings.hooks as Json | undefined) ?? {})) {
    const kept = (entries as Array<{ hooks?: Array<{ command?: unknown }> }>)
      .map(e => ({ ...e, hooks: (e.hooks ?? []).filter(x => !isOurs(x.command, bin)) }))
      .filter(e => e.hooks.length > 0)
    if (kept.length > 0) hooks[event] = kept
  }
  const next: Json = { ...settings, hooks }
  if (Object.keys(hooks).length === 0) delete next.hooks
  if (permission && next.permissions != null) {
    const perms = { ...(next.permissions as Json) }
    perms.allow = ((perms.allow as string[] | undefined) ?? []).filter(p => p !== TOOL_PATTERN)
    next.permissions = perms
  }
  return next
}

export function installCommands(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('install')
    .description('register the claudemesh MCP server and hooks in Claude Code (user scope; reversible)')
    .option('--mesh <mesh>', 'the mesh plain `claude` sessions join (default: the only mesh)')
    .option('--json', 'print JSON')
    .action(async (o: { mesh?: string; json?: boolean }) => {
      const h = home(env)
      const [node, bin] = selfCommand() as [string, string]
      const claudeJson = claudeJsonPath(env)
      const settingsFile = settingsPath(env)
      const cfg = await readJson(claudeJson)
      const settings = await readJson(settingsFile)
      const backups = [await backup(h, claudeJson), await backup(h, settingsFile)].filter((b): b is string => b != null)
      const servers = { ...(cfg.mcpServers as Json | undefined) }
      const envBlock = env.CLAUDEMESH_HOME != null ? { CLAUDEMESH_HOME: h } : {}
      servers.claudemesh = {
        type: 'stdio',
        command: node,
        args: [bin, 'mcp', ...(o.mesh != null ? ['--mesh', o.mesh] : [])],
        env: envBlock
      }
      const prefix = `${env.CLAUDEMESH_HOME != null ? `CLAUDEMESH_HOME=${shellQuote(h)} ` : ''}${shellQuote(node)} ${shellQuote(bin)}`
      const cleaned = removeHooks(settings, bin, false)
      const previous = JSON.parse(await readFile(join(h, 'install.json'), 'utf8').catch(() => '{}')) as { addedPermission?: boolean }
      // a second install must not forget that the first one added the permission
      const hadPermission =
        previous.addedPermission !== true &&
        ((settings.permissions as Json | undefined)?.allow as string[] | undefined)?.includes(TOOL_PATTERN) === true
      await mkdir(dirname(claudeJson), { recursive: true })
      await mkdir(dirname(settingsFile), { recursive: true })
      await writeFileAtomic(claudeJson, `${JSON.stringify({ ...cfg, mcpServers: servers }, null, 2)}\n`, 0o600)
      await writeFileAtomic(settingsFile, `${JSON.stringify(addHooks(cleaned, prefix), null, 2)}\n`, 0o600)
      const record = {
        v: 1,
        bin,
        claudeJson,
        settings: settingsFile,
        addedPermission: !hadPermission,
        backups,
        at: new Date().toISOString()
      }
      await writeFileAtomic(join(h, 'install.json'), `${JSON.stringify(record, null, 2)}\n`)
      if (o.json === true) return outJson(record)
      out(
        `registered the claudemesh MCP server in ${claudeJson}\nadded claudemesh hooks and the ${TOOL_PATTERN} permission to ${settingsFile}\nbackups: ${backups.join(', ') || 'none (files were new)'}\nundo with: claudemesh uninstall`
      )
    })

  program
    .command('uninstall')
    .description("remove what `claudemesh install` added to Claude Code's config")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const h = home(env)
      const recordText = await readFile(join(h, 'install.json'), 'utf8').catch(() => undefined)
      const record =
        recordText != null
          ? (JSON.parse(recordText) as { bin: string; claudeJson: string; settings: string; addedPermission: boolean })
          : undefined
      const bin = record?.bin ?? (selfCommand()[1] as string)
      const claudeJson = record?.claudeJson ?? claudeJsonPath(env)
      const settingsFile = record?.settings ?? settingsPath(env)
      const cfg = await readJson(claudeJson)
      const settings = await readJson(settingsFile)
      const backups = [await backup(h, claudeJson), await backup(h, settingsFile)].filter((b): b is string => b != null)
      const servers = { ...(cfg.mcpServers as Json | undefined) }
      const removedServer = servers.claudemesh != null
      delete servers.claudemesh
      if (removedServer) await writeFileAtomic(claudeJson, `${JSON.stringify({ ...cfg, mcpServers: servers }, null, 2)}\n`, 0o600)
      if (Object.keys(settings).length > 0)
        await writeFileAtomic(
          settingsFile,
          `${JSON.stringify(removeHooks(settings, bin, record?.addedPermission ?? true), null, 2)}\n`,
          0o600
        )
      await writeFileAtomic(join(h, 'install.json'), '{}\n').catch(() => {})
      const r = { removedServer, claudeJson, settings: settingsFile, backups }
      if (o.json === true) return outJson(r)
      out(
        `removed the claudemesh MCP server from ${claudeJson}${removedServer ? '' : ' (it was not there)'} and claudemesh hooks from ${settingsFile}\nbackups of the edited files: ${backups.join(', ') || 'none'}`
      )
    })
}
