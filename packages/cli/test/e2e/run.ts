// Runs the real `claude` against a fake API: once in print mode, or interactively under tmux.
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** A throwaway HOME with CLAUDE_CONFIG_DIR inside it, pre-seeded so no first-run dialog appears. */
export interface ClaudeHome {
  dir: string
  configDir: string
  /** A fresh, trusted working directory inside `dir`. */
  project: string
  cleanup: () => Promise<void>
}

/** Creates a home whose `.claude.json` skips onboarding, approves ANTHROPIC_API_KEY=test and trusts `trust` dirs. */
export async function createClaudeHome(trust: string[] = []): Promise<ClaudeHome> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'cm-claude-')))
  const configDir = join(dir, '.claude')
  const project = join(dir, 'project')
  await mkdir(configDir, { recursive: true })
  await mkdir(project)
  const projects: Record<string, object> = {}
  for (const p of [project, ...trust, ...(await Promise.all(trust.map(async t => realpath(t).catch(() => t))))]) {
    projects[p] = { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true, projectOnboardingSeenCount: 1 }
  }
  const config = {
    hasCompletedOnboarding: true,
    // Interactive sessions ask "Do you want to use this API key?" unless its last 20 characters are approved.
    customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
    projects
  }
  await writeFile(join(configDir, '.claude.json'), JSON.stringify(config, null, 2))
  return { dir, configDir, project, cleanup: async () => rm(dir, { recursive: true, force: true }) }
}

const API_KEY = 'test'

export interface ClaudeOpts {
  /** The `claude` executable (from ensureClaude()). */
  bin: string
  /** The fake API's base URL. */
  apiUrl: string
  /** Extra arguments, e.g. ['--mcp-config', file, '--allowedTools', 'mcp__x__*', '--session-id', id]. */
  args?: string[]
  /** Defaults to home.project. */
  cwd?: string
  env?: Record<string, string>
  /** Reuse a home (e.g. for --resume); otherwise a fresh one is made and removed afterwards. */
  home?: ClaudeHome
}

/** The environment `claude` runs in: ours minus any Claude/Anthropic settings, plus the fake API. */
export function claudeEnv(home: ClaudeHome, apiUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(ANTHROPIC_|CLAUDE_|CLAUDECODE$)/.test(k)) env[k] = v
  }
  return {
    ...env,
    HOME: home.dir,
    CLAUDE_CONFIG_DIR: home.configDir,
    ANTHROPIC_BASE_URL: apiUrl,
    ANTHROPIC_API_KEY: API_KEY,
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    ...extra
  }
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** `claude -p <prompt>` to completion (killed after timeoutMs, default 60 s). */
export async function runClaude(opts: ClaudeOpts & { prompt: string; timeoutMs?: number }): Promise<RunResult> {
  const home = opts.home ?? (await createClaudeHome(opts.cwd != null ? [opts.cwd] : []))
  const started = Date.now()
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(opts.bin, ['-p', opts.prompt, ...(opts.args ?? [])], {
        cwd: opts.cwd ?? home.project,
        env: claudeEnv(home, opts.apiUrl, opts.env),
        stdio: ['ignore', 'pipe', 'pipe']
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString()
      })
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString()
      })
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
      }, opts.timeoutMs ?? 60_000)
      child.on('error', err => {
        clearTimeout(timer)
        reject(err)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
      })
    })
  } finally {
    if (opts.home == null) await home.cleanup()
  }
}

export interface InteractiveClaude {
  home: ClaudeHome
  /** Types `text` literally (no Enter). */
  sendKeys: (text: string) => Promise<void>
  /** Presses tmux key names, e.g. 'Enter', 'Escape', 'C-c', 'Up'. */
  press: (...keys: string[]) => Promise<void>
  /** Types `text`, then Enter. */
  submit: (text: string) => Promise<void>
  /** The pane's text (with up to 200 lines of scrollback). */
  capture: () => Promise<string>
  /** Polls the pane every 100 ms until `re` matches; returns the screen, or throws with it. */
  waitForScreen: (re: RegExp, timeoutMs?: number) => Promise<string>
  /** Kills the tmux server (and claude), and removes the home if we made it. */
  kill: () => Promise<void>
}

/** An empty input prompt: the line `❯` alone between the input box's rules. */
export const READY = /^─+\n❯\s*\n─+$/m

/** First-run dialogs that the pre-seeded .claude.json should prevent. */
const DIALOG = /trust this folder|Do you want to use this API key|Choose the text style/
/**
 * Starts `claude` in a detached tmux session (own socket) and waits until it is ready for input.
 * Pass `--allowedTools` for every tool the script calls: interactive sessions default to auto mode,
 * whose server-side safety check the fake API cannot answer, so other tool calls stop at a dialog.
 */
export async function runClaudeInteractive(
  opts: ClaudeOpts & { cols?: number; rows?: number; readyTimeoutMs?: number }
): Promise<InteractiveClaude> {
  const home = opts.home ?? (await createClaudeHome(opts.cwd != null ? [opts.cwd] : []))
  const sock = join(home.dir, 'tmux.sock')
  const conf = join(home.dir, 'tmux.conf')
  await writeFile(conf, 'set -g remain-on-exit on\nset -g history-limit 5000\n')
  const env = claudeEnv(home, opts.apiUrl, { TERM: 'xterm-256color', ...opts.env })
  const tmux = async (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile('tmux', ['-f', conf, '-S', sock, ...args], { env, timeout: 10_000 }, (err, stdout, stderr) => {
        if (err != null) reject(new Error(`tmux ${args[0] ?? ''}: ${stderr || err.message}`))
        else resolve(stdout)
      })
    })
  // The tmux server, started by this call, gets `env` and hands it to the pane. With arguments tmux
  // execs claude directly; a lone path goes through `sh -c`, which execs it too (pane_pid is claude).
  await tmux(
    'new-session',
    '-d',
    '-s',
    'claude',
    '-x',
    String(opts.cols ?? 120),
    '-y',
    String(opts.rows ?? 40),
    '-c',
    opts.cwd ?? home.project,
    opts.bin,
    ...(opts.args ?? [])
  )

  const pid = Number((await tmux('display-message', '-p', '-t', 'claude', '#{pane_pid}')).trim())
  const capture = async (): Promise<string> => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'claude')
  const s: InteractiveClaude = {
    home,
    sendKeys: async text => {
      await tmux('send-keys', '-t', 'claude', '-l', text)
    },
    press: async (...keys) => {
      await tmux('send-keys', '-t', 'claude', ...keys)
    },
    submit: async text => {
      await s.sendKeys(text)
      await sleep(150) // Enter in the same burst as the text reads as part of a paste
      await s.press('Enter')
    },
    capture,
    async waitForScreen(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      let screen = ''
      for (;;) {
        screen = await capture().catch(() => screen)
        if (re.test(screen)) return screen
        if (Date.now() > deadline) throw new Error(`screen did not match ${re} within ${timeoutMs} ms:\n${screen}`)
        await sleep(100)
      }
    },
    async kill() {
      // Let claude exit before its home goes: it writes to CLAUDE_CONFIG_DIR on the way out.
      await stopProcess(pid)
      await tmux('kill-server').catch(() => {})
      if (opts.home == null) await home.cleanup()
    }
  }
  try {
    const screen = await s.waitForScreen(new RegExp(`${READY.source}|${DIALOG.source}`, 'm'), opts.readyTimeoutMs ?? 20_000)
    if (!READY.test(screen))
      throw new Error(`claude stopped at a first-run dialog (is the cwd trusted? createClaudeHome([cwd])):\n${screen}`)
  } catch (err) {
    await s.kill()
    throw err
  }
  return s
}

/** SIGHUP (a closing terminal), SIGKILL after 3 s; resolves once the process has exited (checked every 50 ms, at most 5 s). */
async function stopProcess(pid: number): Promise<void> {
  if (!(pid > 0) || !alive(pid)) return
  try {
    process.kill(pid, 'SIGHUP')
  } catch {}
  for (let i = 0; i < 100 && alive(pid); i++) {
    if (i === 60)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    await sleep(50)
  }
}

/** Running, and not merely a zombie waiting to be reaped (claude lingers as one for seconds under tmux). */
function alive(pid: number): boolean {
  if (existsSync('/proc/self')) {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)?.[0] !== 'Z'
    } catch {
      return false
    }
  }
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
