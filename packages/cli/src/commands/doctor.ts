/**
 * `claudemesh doctor`: one line per check, ✔ / ! / ✘, and a non-zero exit when something is
 * broken. Node version, the envelope cipher, the claude binary, registration in Claude Code, home permissions,
 * mesh and session key files, and for each running node whether it reaches its peers.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlClient, listMeshNames, listRunning, type MeshInfo } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { claudeBin, claudeVersion, selfCommand, TOOL_PATTERN } from '../claude.js'
import { home } from '../options.js'
import { out, outJson } from '../output.js'
import { claudeJsonPath, settingsPath } from './install.js'

type Level = 'ok' | 'warn' | 'fail'
interface Check {
  level: Level
  what: string
  detail: string
}

const MARK: Record<Level, string> = { ok: '✔', warn: '!', fail: '✘' }

async function mode(path: string): Promise<number | undefined> {
  return stat(path).then(
    s => s.mode & 0o777,
    () => undefined
  )
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else if (e.name.endsWith('.json')) out.push(p)
  }
  return out
}

export async function diagnose(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = []
  const add = (level: Level, what: string, detail: string): void => {
    checks.push({ level, what, detail })
  }
  const [maj = 0, min = 0] = process.versions.node.split('.').map(Number)
  add(
    maj > 20 || (maj === 20 && min >= 19) ? 'ok' : 'fail',
    'node',
    `v${process.versions.node}${maj > 20 || (maj === 20 && min >= 19) ? '' : ' (claudemesh needs >= 20.19)'}`
  )
  // loaded here only: the light entry point every hook and verb imports stays without the ciphers
  const { aeadImpl } = await import('@claudemesh/node/aead')
  const sodium = aeadImpl() === 'libsodium'
  add(
    sodium ? 'ok' : 'warn',
    'cipher',
    sodium
      ? 'ChaCha20-Poly1305 by libsodium (sodium-native)'
      : `ChaCha20-Poly1305 by node:crypto (${env.CLAUDEMESH_AEAD === 'node' ? 'CLAUDEMESH_AEAD=node' : `sodium-native did not load for ${process.platform}-${process.arch}`}): the same bytes, more CPU per DM`
  )
  const version = await claudeVersion(env)
  add(
    version != null ? 'ok' : 'warn',
    'claude',
    version ?? `${claudeBin(env)} not found (set CLAUDEMESH_CLAUDE_BIN or install Claude Code)`
  )
  const cfg = JSON.parse(await readFile(claudeJsonPath(env), 'utf8').catch(() => '{}')) as { mcpServers?: Record<string, unknown> }
  const settings = JSON.parse(await readFile(settingsPath(env), 'utf8').catch(() => '{}')) as {
    hooks?: Record<string, unknown[]>
    permissions?: { allow?: string[] }
  }
  const hookCount = Object.values(settings.hooks ?? {})
    .flat()
    .flatMap(e => (e as { hooks?: Array<{ command?: string }> }).hooks ?? [])
    .filter(x => x.command?.includes(`${selfCommand()[1] ?? 'bin.js'} hook `) === true).length
  add(
    cfg.mcpServers?.claudemesh != null ? 'ok' : 'warn',
    'registration',
    cfg.mcpServers?.claudemesh != null
      ? `MCP server in ${claudeJsonPath(env)}; ${hookCount} hook(s)${settings.permissions?.allow?.includes(TOOL_PATTERN) === true ? ', tools allowed' : ''}`
      : 'not installed for plain `claude` (`claudemesh launch` works without it; `claudemesh install` registers it)'
  )
  const h = home(env)
  const homeMode = await mode(h)
  if (homeMode == null) add('warn', 'home', `${h} does not exist yet`)
  else
    add(
      (homeMode & 0o077) === 0 ? 'ok' : 'fail',
      'home',
      `${h} mode ${homeMode.toString(8)}${(homeMode & 0o077) === 0 ? '' : ' (should be 700: chmod 700 it)'}`
    )
  const secrets = [...(await filesUnder(join(h, 'meshes'))), ...(await filesUnder(join(h, 'sessions')))]
  const loose = []
  for (const f of secrets) if (((await mode(f)) ?? 0) & 0o077) loose.push(f)
  add(
    loose.length === 0 ? 'ok' : 'fail',
    'key files',
    loose.length === 0 ? `${secrets.length} file(s), all 0600` : `readable by others: ${loose.join(', ')}`
  )
  const meshes = await listMeshNames(h)
  const { loadMesh } = await import('@claudemesh/node/identity')
  for (const m of meshes) {
    try {
      const mesh = await loadMesh(h, m)
      add(
        'ok',
        `mesh ${m}`,
        `id ${mesh.id}, ${mesh.ownerKey != null ? 'owner' : mesh.contentSecret != null ? 'member' : 'relay'}, ${mesh.bootstrap.length} bootstrap address(es), ${mesh.relays.length} relay(s)`
      )
    } catch (err) {
      add('fail', `mesh ${m}`, (err as Error).message)
      continue
    }
    for (const e of (await listRunning(h, m)).filter(x => x.kind !== 'relay')) {
      try {
        const c = await ControlClient.connect(e.control, { timeoutMs: 2_000 })
        const info = await c.call<MeshInfo>('info').finally(() => {
          c.close()
        })
        if (e.kind === 'courier')
          add('ok', `courier ${e.name}`, `pid ${e.pid}: carrying ${info.queued} DM(s) of a stopped session (SPEC.md §8.7)`)
        else
          add(
            info.peersOnline > 0 || info.peersKnown === 0 ? 'ok' : 'warn',
            `node ${e.name}`,
            `${e.kind} pid ${e.pid}: ${info.peersOnline} peer(s) online of ${info.peersKnown} known, ${info.unread} unread`
          )
        for (const r of info.relays ?? []) {
          add(
            r.connected && r.mailbox ? 'ok' : 'warn',
            `relay ${r.id.slice(-8)}`,
            r.connected
              ? `${e.name} is connected to ${r.addr}${r.mailbox ? '' : ' (mailbox stream not open yet)'}`
              : `${e.name} cannot reach ${r.addr}: DMs to members who are away wait in its outbox (${info.toRelay ?? 0} now)`
          )
        }
        const sh = info.shared
        if (sh != null && sh.rejected + sh.skipped > 0)
          add(
            'warn',
            `shared ${e.name}`,
            `refused ${sh.rejected} state/memory update(s) from members since start; skipped ${sh.skipped} stored entr(ies) that break the schema`
          )
      } catch (err) {
        add('fail', `node ${e.name}`, `pid ${e.pid} does not answer on its control socket: ${(err as Error).message}`)
      }
    }
  }
  if (meshes.length === 0) add('warn', 'meshes', 'none yet: `claudemesh mesh create <name>` or `claudemesh mesh join <token>`')
  return checks
}

export function doctorCommand(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('doctor')
    .description('check the installation, keys, registration and running nodes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const checks = await diagnose(env)
      if (o.json === true) outJson(checks)
      else out(checks.map(c => `${MARK[c.level]} ${c.what.padEnd(14)} ${c.detail}`).join('\n'))
      if (checks.some(c => c.level === 'fail')) process.exitCode = 1
    })
}
