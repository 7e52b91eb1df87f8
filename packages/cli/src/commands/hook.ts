/**
 * `claudemesh hook <event>`: the hooks `launch`/`install` put into Claude Code's settings.
 * Reads Claude's hook JSON on stdin; its `session_id` finds this session's node through the
 * registry. With no node for the session it does nothing, quietly: hooks run on every turn.
 *
 *   session-start | user-prompt-submit | post-tool-use   → JSON additionalContext (stdout)
 *   stop | wait   (installed with asyncRewake)            → waits for a message; exit 2 with
 *                                                           it on stderr wakes the session
 *   pre-tool-use  (matcher Edit|Write|MultiEdit|NotebookEdit) → denies an edit of a file another
 *                                                           session reserved (pre-tool-use.ts)
 */
import { readFileSync } from 'node:fs'
import { ControlClient, listMeshNames, listRunning, type RegistryEntry, sanitizeText } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { home } from '../options.js'
import { UsageError } from '../output.js'
import { preToolUse } from './pre-tool-use.js'

const EVENTS: Record<string, string> = {
  'session-start': 'SessionStart',
  'user-prompt-submit': 'UserPromptSubmit',
  'post-tool-use': 'PostToolUse'
}
/** How long a waiting hook waits before it exits quietly (its own timeout must be longer). */
export const WAIT_MS = 55 * 60_000
const MAX_STDIN = 1024 * 1024

async function readStdin(): Promise<Record<string, unknown>> {
  if (process.stdin.isTTY) return {}
  let text = ''
  // Claude Code writes the JSON and closes stdin; never hang a turn on a pipe left open
  const timer = setTimeout(() => {
    process.stdin.destroy()
  }, 5_000)
  try {
    for await (const chunk of process.stdin) {
      text += String(chunk)
      if (text.length > MAX_STDIN) throw new UsageError('hook input is larger than 1 MiB')
    }
  } finally {
    clearTimeout(timer)
  }
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new UsageError('hook input is not JSON')
  }
}

/** The node serving this Claude session, in any mesh of the home. */
export async function nodeForSession(session: string, env: NodeJS.ProcessEnv): Promise<RegistryEntry | undefined> {
  const h = home(env)
  for (const mesh of await listMeshNames(h)) {
    // a courier carries a stopped session's DMs; it serves no hooks (SPEC.md §8.7)
    const hit = (await listRunning(h, mesh)).find(e => e.session === session.toLowerCase() && e.kind !== 'relay' && e.kind !== 'courier')
    if (hit != null) return hit
  }
  return undefined
}

export function hookCommand(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('hook <event>')
    .description('serve a Claude Code hook: session-start, user-prompt-submit, post-tool-use, pre-tool-use, stop (or wait)')
    .option('--wait-ms <ms>', 'how long stop/wait waits for a message', String(WAIT_MS))
    .action(async (event: string, o: { waitMs: string }) => {
      await runHook(event, o, env)
    })
}

/**
 * `claudemesh hook <event>` as Claude Code runs it (bin.ts calls this without building the
 * whole CLI: a PostToolUse hook runs after every tool call). Resolves to the exit code.
 */
export async function hookMain(event: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  await runHook(event, { waitMs: String(WAIT_MS) }, env)
  return typeof process.exitCode === 'number' ? process.exitCode : 0
}

async function runHook(event: string, o: { waitMs: string }, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await serveHook(event, o, env)
  } catch (err) {
    // exit 2 means "block" (or "wake") to Claude Code: a failing hook must never say that
    process.stderr.write(`claudemesh hook ${event}: ${(err as Error).message}\n`)
    process.exitCode = 1
  }
}

async function serveHook(event: string, o: { waitMs: string }, env: NodeJS.ProcessEnv): Promise<void> {
  const waiting = event === 'stop' || event === 'wait'
  if (!waiting && EVENTS[event] == null && event !== 'pre-tool-use')
    throw new UsageError(`unknown hook event "${event}": use session-start, user-prompt-submit, post-tool-use, pre-tool-use, stop or wait`)
  const input = await readStdin()
  const session = typeof input.session_id === 'string' ? input.session_id : env.CLAUDE_CODE_SESSION_ID
  if (session == null || session === '') return
  // a Stop hook that keeps exiting 2 would loop forever: once Claude is continuing because
  // of a stop hook, let the turn end; and never hold a print-mode turn open
  if (waiting && (input.stop_hook_active === true || inPrintMode())) return
  // a waiting hook may start before the session's MCP server has started its node (the
  // SessionStart hook always does): wait for the node to appear rather than give up
  const entry = waiting ? await awaitNode(session, env) : await nodeForSession(session, env)
  if (entry == null) return
  if (event === 'pre-tool-use') return preToolUse(input, entry.control)
  const client = await ControlClient.connect(entry.control)
  try {
    if (waiting) {
      const r = await client.call<{ text: string | null }>('hook.wait', {
        event: event === 'wait' ? 'session-start' : 'stop',
        timeoutMs: Number(o.waitMs)
      })
      if (r.text != null) {
        process.stderr.write(`${sanitizeText(r.text.slice(0, 9_900))}\n`)
        process.exitCode = 2
      }
      return
    }
    const r = await client.call<{ text: string | null }>('hook', { event })
    if (r.text != null) {
      process.stdout.write(
        `${JSON.stringify({ hookSpecificOutput: { hookEventName: EVENTS[event], additionalContext: sanitizeText(r.text.slice(0, 9_900)) } })}\n`
      )
    }
  } finally {
    client.close()
  }
}

/** How long a waiting hook waits for its session's node to start. */
export const NODE_START_WAIT_MS = 60_000

async function awaitNode(session: string, env: NodeJS.ProcessEnv): Promise<RegistryEntry | undefined> {
  const deadline = Date.now() + NODE_START_WAIT_MS
  for (;;) {
    const entry = await nodeForSession(session, env)
    if (entry != null || Date.now() >= deadline) return entry
    // the registry is files in another process's hands: look again shortly (cheap, bounded)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

/**
 * Print mode (-p) runs asyncRewake hooks in the foreground, so a waiting hook would hold the
 * turn open: look for -p/--print on the claude process above us (Linux /proc; elsewhere we
 * cannot tell and wait as usual).
 */
function inPrintMode(): boolean {
  let pid = process.ppid
  for (let depth = 0; depth < 4 && pid > 1; depth++) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.some(a => /(^|\/)claude(\.exe)?$/.test(a)) || args.includes('--session-id'))
        return args.includes('-p') || args.includes('--print')
      pid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1])
    } catch {
      return false
    }
  }
  return false
}
