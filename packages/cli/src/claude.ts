/**
 * Facts about Claude Code that launch, install and doctor share: where its binary and config
 * live, how a cwd maps to its transcript folder, and the settings our hooks need.
 */
import { execFile } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** `$CLAUDE_CONFIG_DIR`, default `~/.claude`. */
export function claudeConfigDir(env: NodeJS.ProcessEnv): string {
  return env.CLAUDE_CONFIG_DIR != null && env.CLAUDE_CONFIG_DIR !== '' ? env.CLAUDE_CONFIG_DIR : join(env.HOME ?? homedir(), '.claude')
}

/** The `claude` binary: `$CLAUDEMESH_CLAUDE_BIN`, else `claude` on PATH. */
export function claudeBin(env: NodeJS.ProcessEnv): string {
  return env.CLAUDEMESH_CLAUDE_BIN != null && env.CLAUDEMESH_CLAUDE_BIN !== '' ? env.CLAUDEMESH_CLAUDE_BIN : 'claude'
}

export async function claudeVersion(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise(resolve => {
    execFile(
      claudeBin(env),
      ['--version'],
      { env: { ...process.env, ...env, DISABLE_AUTOUPDATER: '1' }, timeout: 20_000 },
      (err, stdout) => {
        resolve(err == null ? stdout.trim().split('\n')[0] : undefined)
      }
    )
  })
}

/** Claude Code's project folder name for a cwd: every non-alphanumeric character becomes `-`. */
export function projectSlug(cwd: string): string {
  return cwd.replace(/[^A-Za-z0-9]/g, '-')
}

const UUID_FILE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$/i

/**
 * The session `--continue` would pick: the newest `<uuid>.jsonl` of the cwd's project folder.
 * Slugs over 200 characters are cut (plus a version-dependent hash), so match those by prefix.
 */
export async function newestSession(cwd: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const projects = join(claudeConfigDir(env), 'projects')
  const slug = projectSlug(cwd)
  let dirs: string[]
  try {
    dirs = await readdir(projects)
  } catch {
    return undefined
  }
  const matches = slug.length <= 200 ? dirs.filter(d => d === slug) : dirs.filter(d => d.startsWith(slug.slice(0, 200)))
  let best: { id: string; mtime: number } | undefined
  for (const d of matches) {
    for (const f of await readdir(join(projects, d)).catch(() => [] as string[])) {
      const m = UUID_FILE.exec(f)
      if (m?.[1] == null) continue
      const mtime = (await stat(join(projects, d, f))).mtimeMs
      if (best == null || mtime > best.mtime) best = { id: m[1].toLowerCase(), mtime }
    }
  }
  return best?.id
}

/**
 * How our own CLI is invoked from Claude Code's config: this Node and the CLI as it was
 * started (the bundle `dist/claudemesh.mjs`, or `dist/bin.js` in development), absolute.
 */
export function selfCommand(): string[] {
  const started = process.argv[1]
  if (started != null && /(claudemesh\.mjs|bin\.js)$/.test(started)) return [process.execPath, realpathSync(started)]
  const here = import.meta.url
  return [process.execPath, fileURLToPath(new URL(here.endsWith('/src/claude.ts') ? '../dist/claudemesh.mjs' : './claudemesh.mjs', here))]
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_/.:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}

/** Seconds a waiting hook may run; our own wait ends earlier (hook.ts WAIT_MS). */
export const WAIT_HOOK_TIMEOUT_S = 3600

/**
 * The hooks claudemesh serves, as Claude Code settings. `prefix` is the command to run us.
 * `wake: false` leaves out the waiting hooks: in print mode (-p) Claude runs asyncRewake
 * hooks in the foreground, so they would hold every turn open.
 */
export function hookSettings(prefix: string, wake = true): Record<string, unknown> {
  const cmd = (event: string): string => `${prefix} hook ${event}`
  const waiting = (event: string): Record<string, unknown> => ({
    type: 'command',
    command: cmd(event),
    asyncRewake: true,
    timeout: WAIT_HOOK_TIMEOUT_S
  })
  const hooks: Record<string, unknown> = {
    SessionStart: [{ hooks: [{ type: 'command', command: cmd('session-start') }, ...(wake ? [waiting('wait')] : [])] }],
    UserPromptSubmit: [{ hooks: [{ type: 'command', command: cmd('user-prompt-submit') }] }],
    PostToolUse: [{ matcher: '*', hooks: [{ type: 'command', command: cmd('post-tool-use') }] }],
    // file reservations (SPEC.md §15.7): another session's exclusive reservation denies the edit
    PreToolUse: [{ matcher: EDIT_TOOLS, hooks: [{ type: 'command', command: cmd('pre-tool-use') }] }]
  }
  if (wake) hooks.Stop = [{ hooks: [waiting('stop')] }]
  return hooks
}

export const TOOL_PATTERN = 'mcp__claudemesh__*'
/** The Claude Code tools that change files, which the PreToolUse hook checks against reservations. */
export const EDIT_TOOLS = 'Edit|Write|MultiEdit|NotebookEdit'
