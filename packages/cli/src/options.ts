/** Flags shared by `mcp`, `daemon` and `launch`, and how they become a node's init. */
import { createHash, randomUUID } from 'node:crypto'
import {
  assertPrivate,
  GROUP_NAME,
  type Group,
  homeDir,
  LIMIT_NAMES,
  MESSAGE_MODES,
  parseLimits,
  relayId,
  validateSessionId
} from '@claudemesh/node/client'
import type { Command } from 'commander'
import { UsageError } from './output.js'

export interface NodeFlags {
  mesh?: string
  session?: string
  name?: string
  role?: string
  groups?: string
  messageMode?: string
  listen?: string[]
  bootstrap?: string[]
  relay?: string[]
  lan?: boolean
  limit?: string[]
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

export function addNodeFlags(cmd: Command): Command {
  return cmd
    .option('--mesh <mesh>', 'mesh name (default: the only mesh in the home)')
    .option('--session <uuid>', 'Claude Code session UUID (default: $CLAUDE_CODE_SESSION_ID)')
    .option('--name <name>', 'display name in the mesh')
    .option('--role <role>', 'role in the mesh')
    .option('--groups <groups>', 'groups with optional roles, e.g. "frontend:lead,reviewers"')
    .option('--message-mode <mode>', 'push, inbox or off')
    .option('--listen <multiaddr>', 'listen address (repeatable; "none": reachable only through relays)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial, with or without /p2p/<id> (repeatable)', collect)
    .option('--relay <multiaddr>', "relay to use besides the mesh's, with /p2p/<id> (repeatable)", collect)
    .option('--lan', 'listen on all interfaces and find peers on the LAN with mDNS (or CLAUDEMESH_LAN=1)')
    .option('--limit <name=value>', LIMIT_HELP, collect)
}

/** `--limit`'s help: what can be set (SPEC.md §8.8). */
export const LIMIT_HELP = `a flood limit for what each peer may send this node, e.g. dm.rate=100 (repeatable): ${LIMIT_NAMES.join(', ')}`

/**
 * `--limit name=value` settings as a node's `limits`, or a usage error naming the bad one.
 * Undefined when none is given, so the node keeps its defaults.
 */
export function limitFlags(specs: string[] | undefined): ReturnType<typeof parseLimits> | undefined {
  if (specs == null || specs.length === 0) return undefined
  try {
    return parseLimits(specs)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** `--message-mode`: one of push, inbox or off, or a usage error. */
export function checkMessageMode(mode: string | undefined): void {
  if (mode != null && !(MESSAGE_MODES as readonly string[]).includes(mode))
    throw new UsageError(`invalid --message-mode "${mode}": use push, inbox or off`)
}

/** "frontend:lead,reviewers" → [{name: 'frontend', role: 'lead'}, {name: 'reviewers'}] */
export function parseGroups(spec: string | undefined): Group[] {
  if (spec == null || spec.trim() === '') return []
  const seen = new Map<string, Group>()
  for (const part of spec
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)) {
    const [name = '', role] = part
      .replace(/^@/, '')
      .split(':')
      .map(s => s.trim())
    if (!GROUP_NAME.test(name)) throw new UsageError(`invalid group "${part}": use letters, digits, '.', '_' or '-'`)
    if (name === 'all') throw new UsageError('"all" is reserved for messages to everyone')
    seen.set(name, role != null && role !== '' ? { name, role } : { name })
  }
  return [...seen.values()]
}

/**
 * The session a node speaks for: `--session`, else `$CLAUDE_CODE_SESSION_ID`; a daemon with
 * only `--name` gets a UUID derived from (mesh, name), so it keeps its identity across
 * restarts; with neither, a fresh one.
 */
export function resolveSession(flags: NodeFlags, meshName: string, env: NodeJS.ProcessEnv, kind: 'mcp' | 'daemon'): string {
  const explicit = flags.session ?? (kind === 'mcp' ? env.CLAUDE_CODE_SESSION_ID : undefined) ?? env.CLAUDEMESH_SESSION
  if (explicit != null && explicit !== '') {
    try {
      return validateSessionId(explicit)
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
  }
  if (flags.name != null) return uuidFrom(`claudemesh:${kind}:${meshName}:${flags.name}`)
  return randomUUID()
}

function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest()
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

export function listenAddrs(flags: NodeFlags, env: NodeJS.ProcessEnv): { listen?: string[]; mdns: boolean } {
  const lan = flags.lan === true || env.CLAUDEMESH_LAN === '1'
  // `--listen none`: no direct address at all, reachable only through relays (SPEC.md §4)
  if (flags.listen?.length === 1 && flags.listen[0] === 'none') return { listen: [], mdns: false }
  if (flags.listen != null && flags.listen.length > 0) return { listen: flags.listen, mdns: lan }
  return lan ? { listen: ['/ip4/0.0.0.0/tcp/0'], mdns: true } : { mdns: false }
}

/** The home, refused when another user owns it or can write it (SPEC.md §3.1). */
export function home(env: NodeJS.ProcessEnv): string {
  const h = homeDir(env)
  assertPrivate(h)
  return h
}

/** Relay addresses must name their relay: `.../p2p/<id>` (the mailbox and reservations need it). */
export function checkRelays(relays: string[] | undefined): string[] {
  for (const r of relays ?? []) {
    if (relayId(r) == null) throw new UsageError(`relay address "${r}" must end with /p2p/<relay id>, as \`claudemesh relay\` prints it`)
  }
  return relays ?? []
}
