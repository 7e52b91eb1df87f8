/**
 * `claudemesh hook pre-tool-use` (SPEC.md §15.7): before Claude Code's Edit, Write, MultiEdit or
 * NotebookEdit, ask this session's node whether another live session holds the file
 * exclusively; if so, deny the tool call with a reason that names the holder and theirs. Fails
 * open: no session, no node, no path, or a node that does not answer lets the edit go ahead.
 */
import { isAbsolute, resolve } from 'node:path'
import { type Blocked, ControlClient, type PeerInfo, sanitizeLine } from '@claudemesh/node/client'

/** How long the hook waits for the node before it lets the edit go ahead (it runs before every edit). */
const CHECK_MS = 10_000

function filePath(input: Record<string, unknown>): string | undefined {
  const t = input.tool_input
  if (t == null || typeof t !== 'object') return undefined
  const { file_path: file, notebook_path: notebook } = t as Record<string, unknown>
  const raw = typeof file === 'string' && file !== '' ? file : typeof notebook === 'string' && notebook !== '' ? notebook : undefined
  if (raw == null) return undefined
  const cwd = typeof input.cwd === 'string' && isAbsolute(input.cwd) ? input.cwd : process.cwd()
  return resolve(cwd, raw)
}

/** The denial Claude Code shows the model: one sanitized line, under its 2 000-character cap. */
export function denyReason(b: Blocked, handle: string): string {
  const r = b.by
  const who = sanitizeLine(r.name !== '' ? r.name : r.holder.slice(-10), 64)
  const text =
    `claudemesh: ${sanitizeLine(b.rel, 300)} is reserved exclusively by "${who}" (peer ${r.holder.slice(-10)}, until ${new Date(r.expiresAt).toISOString()})` +
    `${r.reason !== '' ? `: ${sanitizeLine(r.reason, 300)}` : ''}. Ask them with send_message to "${sanitizeLine(handle, 80)}" to release it, or work on something else.`
  return sanitizeLine(text, 1500)
}

export async function preToolUse(input: Record<string, unknown>, control: string): Promise<void> {
  const path = filePath(input)
  if (path == null) return
  const client = await ControlClient.connect(control)
  const signal = AbortSignal.timeout(CHECK_MS)
  try {
    const { blocked } = await client.call<{ blocked: Blocked[] }>('reservation.check', { paths: [path] }, { signal })
    const b = blocked[0]
    if (b == null) return
    const { peers } = await client.call<{ peers: PeerInfo[] }>('peers', {}, { signal }).catch(() => ({ peers: [] as PeerInfo[] }))
    const handle = peers.find(p => p.id === b.by.holder)?.handle ?? b.by.holder
    process.stdout.write(
      `${JSON.stringify({ hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: denyReason(b, handle) } })}\n`
    )
  } finally {
    client.close()
  }
}
