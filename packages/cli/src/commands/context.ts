/** `claudemesh context share <summary> [--file F]... [--decision D]... [--to T]` and `context get [peer]` (SPEC.md §17). */
import type { HandOff, SendResult } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { ago, esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean; file?: string[]; decision?: string[]; to?: string }
const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

export function contextCommands(program: Command, env: NodeJS.ProcessEnv): void {
  // `share` and `get` are words of one command, so its options (--json, --name…) go anywhere
  addPickFlags(
    program
      .command('context <action> [words...]')
      .description(
        "context hand-off: `context share <summary> [--file F]... [--decision D]... [--to PEER]`; `context get [peer]` (no peer: every member's latest)"
      )
  )
    .option('--file <path>', 'with share: a file this session worked on (repeatable)', collect)
    .option('--decision <text>', 'with share: a decision made (repeatable)', collect)
    .option('--to <peers>', 'with share: send it to these peers (comma-separated) instead of publishing it')
    .action(async (action: string, words: string[], o: Flags) => {
      if (action === 'share') return share(words.join(' '), o, env)
      if (action === 'get' && words.length <= 1) return get(words[0], o, env)
      throw new UsageError(
        'usage: claudemesh context share <summary> [--file F]... [--decision D]... [--to PEER], or claudemesh context get [peer]'
      )
    })
}

async function share(summary: string, o: Flags, env: NodeJS.ProcessEnv): Promise<void> {
  if (summary.trim() === '') throw new UsageError('a hand-off needs a summary')
  const to = o.to
    ?.split(',')
    .map(t => t.trim())
    .filter(Boolean)
  const r = await callNode<{ handOff?: HandOff; sent?: SendResult[] }>(o, env, 'context.share', {
    summary,
    files: o.file,
    decisions: o.decision,
    to
  })
  if (o.json === true) return outJson(r)
  if (r.sent != null) return out(table(r.sent.map(x => [x.id, x.name, x.status])))
  out('hand-off published to the mesh')
}

async function get(peer: string | undefined, o: Flags, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await callNode<{ handOffs: HandOff[] }>(o, env, 'context.get', { peer })
  if (o.json === true) return outJson(peer != null ? (r.handOffs[0] ?? null) : r.handOffs)
  if (r.handOffs.length === 0) return out(peer != null ? `${esc(peer)} has shared no hand-off` : 'no hand-offs')
  for (const h of r.handOffs) {
    const lines = [
      `${esc(h.name || h.peer.slice(-10))} (${esc(h.peer.slice(-10))})  ${ago(h.at)}`,
      `  ${esc(h.summary, true).replace(/\n/g, '\n  ')}`
    ]
    if (h.files.length > 0) lines.push(`  files: ${h.files.map(f => esc(f)).join(', ')}`)
    for (const d of h.decisions) lines.push(`  - ${esc(d)}`)
    out(lines.join('\n'))
  }
}
