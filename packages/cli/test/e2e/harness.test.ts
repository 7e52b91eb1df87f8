// Proves the e2e harness against the real `claude` binary: print mode, an MCP tool call, a
// UserPromptSubmit hook, --resume in a shared home, and an interactive session under tmux.
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ensureClaude } from './claude.js'
import { type FakeApi, lastToolResult, requestContains, startFakeApi } from './fake-api.js'
import { type ClaudeHome, createClaudeHome, type InteractiveClaude, runClaude, runClaudeInteractive } from './run.js'

const claude = await ensureClaude()
const skip = 'skip' in claude ? claude.skip : undefined
if (skip != null) console.warn(`e2e harness tests skipped: ${skip}`)
const bin = 'bin' in claude ? claude.bin : ''

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map(async f => f()))
})

async function api(script?: Parameters<typeof startFakeApi>[0]): Promise<FakeApi> {
  const a = await startFakeApi(script)
  cleanups.push(a.close)
  return a
}

async function home(): Promise<ClaudeHome> {
  const h = await createClaudeHome()
  cleanups.push(h.cleanup)
  return h
}

/** A stdio MCP server `echo` with one tool, `say`, and instructions carrying a marker. */
async function writeEchoServer(dir: string): Promise<string> {
  const require = createRequire(import.meta.url)
  const file = join(dir, 'echo-server.cjs')
  await writeFile(
    file,
    `
const { McpServer } = require(${JSON.stringify(require.resolve('@modelcontextprotocol/sdk/server/mcp.js'))})
const { StdioServerTransport } = require(${JSON.stringify(require.resolve('@modelcontextprotocol/sdk/server/stdio.js'))})
const { z } = require(${JSON.stringify(require.resolve('zod'))})
const server = new McpServer({ name: 'echo', version: '1.0.0' }, { instructions: 'ECHO-INSTRUCTIONS: call say to echo.' })
server.registerTool('say', { description: 'Echo text back', inputSchema: { text: z.string() } },
  async ({ text }) => ({ content: [{ type: 'text', text: 'echoed:' + text }] }))
server.connect(new StdioServerTransport())
`
  )
  return file
}

describe.skipIf(skip != null)(skip != null ? `claude e2e harness (skipped: ${skip})` : 'claude e2e harness', () => {
  it("claude -p answers with the fake API's text", async () => {
    const a = await api(() => ({ text: 'HELLO-FROM-FAKE' }))
    const r = await runClaude({ bin, apiUrl: a.url, prompt: 'say hi', timeoutMs: 30_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('HELLO-FROM-FAKE')
    expect(a.main()).toHaveLength(1)
    expect(requestContains(a.main()[0]!, 'say hi')).toBe(true)
  }, 40_000)

  it('a scripted tool_use makes claude call an MCP tool, and the next request carries its result', async () => {
    const h = await home()
    const server = await writeEchoServer(h.dir)
    const a = await api((req, i) => {
      if (!req.main) return undefined
      if (i === 0) return { toolUse: { name: 'mcp__echo__say', input: { text: 'ping' } } }
      return { text: `tool said ${lastToolResult(req)?.content ?? 'nothing'}` }
    })
    const mcp = JSON.stringify({ mcpServers: { echo: { command: process.execPath, args: [server] } } })
    const r = await runClaude({
      bin,
      apiUrl: a.url,
      home: h,
      prompt: 'echo ping',
      timeoutMs: 45_000,
      args: ['--mcp-config', mcp, '--strict-mcp-config', '--allowedTools', 'mcp__echo__*']
    })
    expect(r.code, r.stderr).toBe(0)
    const [first, second] = a.main()
    // MCP tools are deferred behind ToolSearch: named in a system message, not in `tools` (ENABLE_TOOL_SEARCH=false lists them).
    expect(requestContains(first!, 'mcp__echo__say')).toBe(true)
    expect(requestContains(first!, 'ECHO-INSTRUCTIONS')).toBe(true)
    expect(lastToolResult(second!)).toMatchObject({ content: 'echoed:ping', isError: false })
    expect(r.stdout.trim()).toBe('tool said echoed:ping')
  }, 60_000)

  it("a UserPromptSubmit hook's additionalContext reaches the model", async () => {
    const a = await api()
    const out = JSON.stringify({ hookSpecificOutput: { hookEventName: 'UserPromptSubmit', additionalContext: 'HOOKCTX' } })
    const settings = { hooks: { UserPromptSubmit: [{ hooks: [{ type: 'command', command: `echo '${out}'` }] }] } }
    const r = await runClaude({ bin, apiUrl: a.url, prompt: 'hello', timeoutMs: 30_000, args: ['--settings', JSON.stringify(settings)] })
    expect(r.code, r.stderr).toBe(0)
    expect(requestContains(a.main()[0]!, 'HOOKCTX')).toBe(true)
  }, 40_000)

  it('a shared home lets a second run --resume the first session', async () => {
    const h = await home()
    const a = await api((req, i) => (req.main ? { text: `REPLY-${i}` } : undefined))
    const id = randomUUID()
    const first = await runClaude({ bin, apiUrl: a.url, home: h, prompt: 'FIRST-PROMPT', args: ['--session-id', id] })
    expect(first.stdout.trim()).toBe('REPLY-0')
    const second = await runClaude({ bin, apiUrl: a.url, home: h, prompt: 'second', args: ['--resume', id] })
    expect(second.stdout.trim()).toBe('REPLY-1')
    expect(requestContains(a.main()[1]!, 'FIRST-PROMPT')).toBe(true)
    expect(requestContains(a.main()[1]!, 'REPLY-0')).toBe(true)
  }, 40_000)

  it('runs interactively under tmux: takes a prompt and shows the reply', async () => {
    const a = await api(req => (req.main ? { text: 'INTERACTIVE-REPLY' } : undefined))
    let s: InteractiveClaude | undefined
    try {
      s = await runClaudeInteractive({ bin, apiUrl: a.url })
      await s.submit('say hi')
      const screen = await s.waitForScreen(/INTERACTIVE-REPLY/, 20_000)
      expect(screen).toContain('say hi')
      expect(requestContains(a.main()[0]!, 'say hi')).toBe(true)
    } finally {
      await s?.kill()
    }
  }, 60_000)
})
