import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { afterEach, describe, expect, it } from 'vitest'
import { claudeArgs } from '../src/commands/launch.js'
import { newestSession, projectSlug } from '../src/claude.js'
import { BIN, cli, Daemon } from './helpers.js'

const dirs: string[] = []
const daemons: Daemon[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-int-'))
  dirs.push(d)
  return d
}

describe('launch', () => {
  it('slugs a cwd the way Claude Code does: every non-alphanumeric character becomes "-"', () => {
    expect(projectSlug('/home/u/my_proj.v2')).toBe('-home-u-my-proj-v2')
  })

  it('--continue finds the newest transcript of the cwd, matching long slugs by prefix', async () => {
    const cfg = await tmp()
    const env = { CLAUDE_CONFIG_DIR: cfg }
    const cwd = '/work/some_project'
    const dir = join(cfg, 'projects', projectSlug(cwd))
    await mkdir(dir, { recursive: true })
    const older = '11111111-1111-4111-8111-111111111111'
    const newer = '22222222-2222-4222-8222-222222222222'
    await writeFile(join(dir, `${older}.jsonl`), '{}\n')
    await writeFile(join(dir, `${newer}.jsonl`), '{}\n')
    await utimes(join(dir, `${older}.jsonl`), new Date(1000), new Date(1000))
    expect(await newestSession(cwd, env)).toBe(newer)
    expect(await newestSession('/elsewhere', env)).toBeUndefined()
    const long = `/x/${'a_b'.repeat(80)}`
    const longDir = join(cfg, 'projects', `${projectSlug(long).slice(0, 200)}-h4sh`)
    await mkdir(longDir, { recursive: true })
    await writeFile(join(longDir, `${older}.jsonl`), '{}\n')
    expect(await newestSession(long, env)).toBe(older)
  })

  it('passes the session id, our MCP server, hooks and tool permission to claude', () => {
    const args = claudeArgs({
      session: 'abc',
      resume: false,
      mesh: 'team',
      home: '/h',
      name: 'alice',
      role: 'lead',
      groups: 'core:lead',
      mode: 'inbox',
      bootstrap: [],
      channels: false,
      passthrough: ['--model', 'x']
    })
    expect(args.slice(0, 2)).toEqual(['--session-id', 'abc'])
    const mcp = JSON.parse(args[args.indexOf('--mcp-config') + 1] ?? '{}') as {
      mcpServers: { claudemesh: { args: string[]; env: Record<string, string> } }
    }
    expect(mcp.mcpServers.claudemesh.args).toEqual(
      expect.arrayContaining([
        'mcp',
        '--mesh',
        'team',
        '--session',
        'abc',
        '--name',
        'alice',
        '--role',
        'lead',
        '--groups',
        'core:lead',
        '--message-mode',
        'inbox'
      ])
    )
    expect(mcp.mcpServers.claudemesh.env.CLAUDEMESH_HOME).toBe('/h')
    const settings = JSON.parse(args[args.indexOf('--settings') + 1] ?? '{}') as {
      hooks: Record<string, Array<{ hooks: Array<{ command: string; asyncRewake?: boolean }> }>>
    }
    expect(Object.keys(settings.hooks).sort()).toEqual(['PostToolUse', 'PreToolUse', 'SessionStart', 'Stop', 'UserPromptSubmit'])
    expect(settings.hooks.PreToolUse?.[0]).toMatchObject({ matcher: 'Edit|Write|MultiEdit|NotebookEdit' })
    expect(settings.hooks.PreToolUse?.[0]?.hooks[0]?.command).toMatch(/CLAUDEMESH_HOME=\/h .* hook pre-tool-use$/)
    expect(settings.hooks.Stop?.[0]?.hooks[0]).toMatchObject({ asyncRewake: true })
    expect(settings.hooks.Stop?.[0]?.hooks[0]?.command).toMatch(/CLAUDEMESH_HOME=\/h .* hook stop$/)
    expect(args[args.indexOf('--allowedTools') + 1]).toBe('mcp__claudemesh__*')
    expect(args.slice(-2)).toEqual(['--model', 'x'])
    const resumed = claudeArgs({
      session: 'abc',
      resume: true,
      mesh: 'team',
      home: '/h',
      name: 'a',
      bootstrap: [],
      channels: true,
      passthrough: []
    })
    expect(resumed.slice(0, 2)).toEqual(['--resume', 'abc'])
    expect(resumed).toContain('--dangerously-load-development-channels')
  })

  it('fails clearly when claude cannot be started, or when there is no mesh', async () => {
    const h = await tmp()
    const none = await cli(['launch', '-y'], { CLAUDEMESH_HOME: h })
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/no mesh in/)
    await cli(['mesh', 'create', 'team'], { CLAUDEMESH_HOME: h })
    const r = await cli(['launch', '-y'], { CLAUDEMESH_HOME: h, CLAUDEMESH_CLAUDE_BIN: '/nonexistent/claude' })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/cannot start claude .*ENOENT/)
  })
})

describe('install and uninstall', () => {
  it("add our server and hooks next to the user's own, and remove exactly ours", async () => {
    const h = await tmp()
    const cfg = await tmp()
    const env = { CLAUDEMESH_HOME: h, CLAUDE_CONFIG_DIR: cfg }
    const mine = {
      hooks: { Stop: [{ hooks: [{ type: 'command', command: 'echo mine' }] }] },
      permissions: { allow: ['Bash(ls)'] },
      theme: 'dark'
    }
    await writeFile(join(cfg, 'settings.json'), JSON.stringify(mine))
    await writeFile(join(cfg, '.claude.json'), JSON.stringify({ mcpServers: { other: { command: 'x' } }, hasCompletedOnboarding: true }))
    expect((await cli(['install'], env)).code).toBe(0)
    const s = JSON.parse(await readFile(join(cfg, 'settings.json'), 'utf8')) as {
      hooks: Record<string, unknown[]>
      permissions: { allow: string[] }
    }
    expect(s.hooks.Stop).toHaveLength(2)
    expect(s.permissions.allow).toEqual(['Bash(ls)', 'mcp__claudemesh__*'])
    const c = JSON.parse(await readFile(join(cfg, '.claude.json'), 'utf8')) as { mcpServers: Record<string, unknown> }
    expect(Object.keys(c.mcpServers).sort()).toEqual(['claudemesh', 'other'])
    // installing twice does not duplicate our hooks
    await cli(['install'], env)
    expect((JSON.parse(await readFile(join(cfg, 'settings.json'), 'utf8')) as typeof s).hooks.Stop).toHaveLength(2)
    const doctor = await cli(['doctor'], env)
    expect(doctor.stdout).toMatch(/✔ registration +MCP server in .*; 6 hook\(s\), tools allowed/)
    expect(doctor.stdout).toMatch(/✔ cipher +ChaCha20-Poly1305 by libsodium/)
    expect((await cli(['uninstall'], env)).code).toBe(0)
    expect(JSON.parse(await readFile(join(cfg, 'settings.json'), 'utf8'))).toEqual(mine)
    expect(JSON.parse(await readFile(join(cfg, '.claude.json'), 'utf8'))).toEqual({
      mcpServers: { other: { command: 'x' } },
      hasCompletedOnboarding: true
    })
  })
})

describe('claudemesh mcp and hooks, as processes', () => {
  it('hooks are silent for a session with no node; for an MCP session they inject fenced context and wake on stop', async () => {
    const h = await tmp()
    const env = { CLAUDEMESH_HOME: h, CLAUDEMESH_SESSION: '' }
    await cli(['mesh', 'create', 'team'], env)
    const session = randomUUID()
    const quiet = await cli(['hook', 'user-prompt-submit'], env, JSON.stringify({ session_id: session, cwd: '/' }))
    expect(quiet).toMatchObject({ code: 0, stdout: '' })
    // a failing hook exits 1, never 2 (which would block the prompt or wake the model)
    expect((await cli(['hook', 'nonsense'], env)).code).toBe(1)
    // bob is a real `claudemesh mcp` process, spoken to over stdio by the MCP SDK client
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--session', session, '--name', 'bob'],
      env: { ...process.env, ...env } as Record<string, string>,
      stderr: 'ignore'
    })
    const client = new Client({ name: 'test', version: '1' })
    await client.connect(transport)
    try {
      expect(client.getInstructions()).toMatch(/You are "bob"/)
      const alice = new Daemon(['--name', 'alice'], env)
      daemons.push(alice)
      await alice.line(/^\+ bob /)
      await cli(['send', 'bob', 'please look at PR 7', '--name', 'alice', '--priority', 'next'], env)
      const prompt = await waitForHook(['hook', 'user-prompt-submit'], env, session, /please look at PR 7/)
      const out = JSON.parse(prompt.stdout) as { hookSpecificOutput: { hookEventName: string; additionalContext: string } }
      expect(out.hookSpecificOutput.hookEventName).toBe('UserPromptSubmit')
      expect(out.hookSpecificOutput.additionalContext).toMatch(/<<peer-message-[0-9a-f]{12} from="alice"/)
      // delivered once: the next hook has nothing
      expect((await cli(['hook', 'post-tool-use'], env, JSON.stringify({ session_id: session }))).stdout).toBe('')
      // the stop hook waits, and a message wakes it with exit code 2 and the text on stderr
      const stop = cli(['hook', 'stop'], env, JSON.stringify({ session_id: session }))
      await cli(['send', 'bob', 'are you there?', '--name', 'alice'], env)
      const woke = await stop
      expect(woke.code).toBe(2)
      expect(woke.stderr).toMatch(/are you there\?/)
      const peers = await client.callTool({ name: 'list_peers', arguments: {} })
      expect(JSON.stringify(peers.structuredContent)).toMatch(/"name":"alice"/)
    } finally {
      await client.close()
    }
  })
})

/** The first hook run whose stdout matches (the message may still be on its way). */
async function waitForHook(args: string[], env: NodeJS.ProcessEnv, session: string, re: RegExp): Promise<{ stdout: string }> {
  for (let i = 0; i < 50; i++) {
    const r = await cli(args, env, JSON.stringify({ session_id: session }))
    if (re.test(r.stdout)) return r
  }
  throw new Error(`no hook output matched ${re}`)
}
