// File reservations with the REAL `claude` binary and the scripted model stand-in (SPEC.md §15.7):
// bob, in his clone, reserves src/auth/** with reserve_files; alice, in her own clone of the same
// repository (another remote spelling), tries to Edit src/auth/login.ts: our PreToolUse hook denies
// it with bob's name and reason; she messages bob; his Stop hook wakes him, he calls release_files;
// her retried Edit goes through.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN } from '../helpers.js'
import { ensureClaude } from './claude.js'
import { type ApiRequest, type ContentBlock, type FakeApi, requestContains, startFakeApi } from './fake-api.js'
import { meshHome, pollCli, stopLaunched, unique } from './mesh.js'
import { type ClaudeHome, claudeEnv, createClaudeHome, runClaudeInteractive } from './run.js'

const claude = await ensureClaude()
const skip = 'skip' in claude ? claude.skip : undefined
if (skip != null) console.warn(`reservation e2e tests skipped: ${skip}`)
const claudeBin = 'bin' in claude ? claude.bin : ''

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/** A Claude home whose project directory is a clone of the repository, with `remote` as origin. */
async function cloneHome(remote: string): Promise<ClaudeHome> {
  const h = await createClaudeHome()
  cleanups.push(h.cleanup)
  execFileSync('git', ['-C', h.project, 'init', '-q', '-b', 'main'])
  execFileSync('git', ['-C', h.project, 'remote', 'add', 'origin', remote])
  await mkdir(join(h.project, 'src', 'auth'), { recursive: true })
  await writeFile(join(h.project, 'src', 'auth', 'login.ts'), 'export const login = 1\n')
  return h
}

async function api(script: Parameters<typeof startFakeApi>[0]): Promise<FakeApi> {
  const a = await startFakeApi(script)
  cleanups.push(a.close)
  return a
}

/** Every tool_result block of the request, oldest first. */
function toolResults(req: ApiRequest): Array<{ content: string; isError: boolean }> {
  const out: Array<{ content: string; isError: boolean }> = []
  for (const m of req.body.messages) {
    if (typeof m.content === 'string') continue
    for (const b of m.content.filter(x => x.type === 'tool_result')) {
      const c = b.content
      out.push({
        content: typeof c === 'string' ? c : Array.isArray(c) ? c.map(x => (x as ContentBlock).text ?? '').join('') : '',
        isError: b.is_error === true
      })
    }
  }
  return out
}

describe.skipIf(skip != null)(
  skip != null ? `reservations with the real claude (skipped: ${skip})` : 'reservations with the real claude',
  () => {
    it("alice's Edit of a file bob holds exclusively is denied with his reason; she asks him, he releases, her retried Edit succeeds", async () => {
      const started = Date.now()
      const mesh = await meshHome(cleanups, 'cm-e2e-rsv-')
      const REASON = unique('migrating-sessions-to-jwt')
      const ASK = unique('please-release-src-auth')
      const homeB = await cloneHome('https://bob:token@example.com/team/app')
      const homeA = await cloneHome('git@example.com:team/app.git')
      const file = join(homeA.project, 'src', 'auth', 'login.ts')

      const apiB = await api(req => {
        if (!req.main) return undefined
        const last = toolResults(req).at(-1)
        if (last?.content.includes('"released"') === true) return { text: 'BOB-RELEASED' }
        if (requestContains(req, ASK)) return { toolUse: { name: 'mcp__claudemesh__release_files', input: {} } }
        if (last?.content.includes('"reservation"') === true) return { text: 'BOB-RESERVED' }
        if (requestContains(req, 'reserve auth'))
          return { toolUse: { name: 'mcp__claudemesh__reserve_files', input: { globs: ['src/auth/**'], reason: REASON } } }
        return undefined
      })
      const bob = await runClaudeInteractive({
        bin: BIN,
        args: ['launch', '-y', '--name', 'bob', '--'],
        apiUrl: apiB.url,
        home: homeB,
        env: { ...mesh, CLAUDEMESH_CLAUDE_BIN: claudeBin },
        readyTimeoutMs: 30_000
      })
      cleanups.push(async () => stopLaunched(bob, mesh))
      await pollCli(['info', '--name', 'bob', '--json'], mesh, () => true, 30_000)
      await bob.submit('reserve auth')
      await bob.waitForScreen(/BOB-RESERVED/, 30_000)
      const reserved = toolResults(apiB.main().at(-1) as ApiRequest).at(-1)
      expect(reserved?.isError, reserved?.content).toBe(false)

      // alice's model, one tool call per step: Read, Edit (denied), send_message, Edit again (after bob released)
      const apiA = await api(async req => {
        if (!req.main) return undefined
        const step = toolResults(req).length
        const edit = { toolUse: { name: 'Edit', input: { file_path: file, old_string: 'login = 1', new_string: 'login = 2' } } }
        if (step === 0) return { toolUse: { name: 'Read', input: { file_path: file } } }
        if (step === 1) {
          // her node is up and holds bob's reservation before she edits
          await pollCli<Array<{ name: string }>>(
            ['reservations', '--name', 'alice', '--json'],
            mesh,
            rs => rs.some(r => r.name === 'bob'),
            30_000
          )
          return edit
        }
        if (step === 2) return { toolUse: { name: 'mcp__claudemesh__send_message', input: { to: 'bob', message: ASK } } }
        if (step === 3) {
          await pollCli<unknown[]>(['reservations', '--name', 'alice', '--json'], mesh, rs => rs.length === 0, 120_000)
          return edit
        }
        return { text: 'ALICE-EDITED' }
      })
      const alice = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [BIN, 'launch', '-y', '--name', 'alice', '--', '-p', 'change the login constant', '--permission-mode', 'acceptEdits'],
          {
            cwd: homeA.project,
            env: claudeEnv(homeA, apiA.url, { ...mesh, CLAUDEMESH_CLAUDE_BIN: claudeBin }),
            stdio: ['ignore', 'pipe', 'pipe']
          }
        )
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
        }, 200_000)
        child.once('error', reject)
        child.once('close', code => {
          clearTimeout(timer)
          resolve({ code, stdout, stderr })
        })
      })
      const results = toolResults(apiA.main().at(-1) as ApiRequest)
      expect(alice.code, `${alice.stderr}\n${JSON.stringify(results, null, 1)}\n${await bob.capture()}`).toBe(0)
      expect(alice.stdout.trim()).toBe('ALICE-EDITED')
      const [read, denied, sent, retried] = results
      expect(read?.isError).toBe(false)
      expect(denied?.isError, denied?.content).toBe(true)
      expect(denied?.content).toMatch(
        new RegExp(
          `src/auth/login\\.ts is reserved exclusively by "bob" \\(peer \\S{10}, until [^)]+\\): ${REASON}\\. Ask them with send_message to "bob"`
        )
      )
      expect(sent?.isError, sent?.content).toBe(false)
      expect(retried?.isError, retried?.content).toBe(false)
      expect(readFileSync(file, 'utf8')).toBe('export const login = 2\n')
      // bob was woken by his Stop hook with alice's fenced message, and released
      const woke = await apiB.waitFor(r => r.main && requestContains(r, ASK), 1_000)
      expect(requestContains(woke, /<<peer-message-[0-9a-f]{12} from="alice"/)).toBe(true)
      await bob.waitForScreen(/BOB-RELEASED/, 20_000)
      expect(apiA.errors).toEqual([])
      expect(apiB.errors).toEqual([])
      process.stderr.write(`${JSON.stringify({ e2e: 'reservations', testMs: Date.now() - started })}\n`)
    }, 300_000)
  }
)
