/**
 * Files between two homes through a relay only (SPEC.md §16): both daemons run with
 * `--listen none`, so every byte goes over the relay's circuit (sealed, and inside Noise end
 * to end). The hash matches; a `kill -9` of the receiving daemon mid-transfer, then a restart,
 * resumes from the chunks already stored. FILES_TEST_MB sets the size (default 50: ~10 s here).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, watch, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, cli, Daemon } from './helpers.js'

const MB = Number(process.env.FILES_TEST_MB ?? 50)
const isChunk = (name: string): boolean => /^\d{6}$/.test(name)

/** Resolves once `dir` holds `n` chunk files, on its change events (bounded). */
async function chunksOnDisk(dir: string, n: number, ms: number): Promise<void> {
  await mkdir(dir, { recursive: true }) // the fetcher creates it too; watching needs it now
  const enough = async (): Promise<boolean> => (await readdir(dir)).filter(isChunk).length >= n
  const signal = AbortSignal.timeout(ms)
  if (await enough()) return
  try {
    for await (const _ of watch(dir, { signal })) if (await enough()) return
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw new Error(`fewer than ${n} chunks arrived within ${ms} ms`)
    throw err
  }
}
const procs: Array<{ stop: (s: NodeJS.Signals) => Promise<unknown> }> = []
const homes: string[] = []
afterEach(async () => {
  await Promise.all(procs.splice(0).map(async p => p.stop('SIGKILL')))
  await Promise.all(homes.splice(0).map(async h => rm(h, { recursive: true, force: true })))
})

async function newHome(): Promise<NodeJS.ProcessEnv> {
  const h = await mkdtemp(join(tmpdir(), 'cm-files-'))
  homes.push(h)
  return { CLAUDEMESH_HOME: h, CLAUDEMESH_SESSION: '' }
}

function relay(env: NodeJS.ProcessEnv): { proc: ChildProcess; ready: Promise<string> } {
  const proc = spawn(process.execPath, [BIN, 'relay', '--mesh', 'team', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'error'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise(resolve => {
    proc.once('exit', resolve)
  })
  procs.push({
    stop: async s => {
      if (proc.exitCode == null && proc.signalCode == null) proc.kill(s)
      return exited
    }
  })
  return {
    proc,
    ready: new Promise(resolve => {
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once('line', resolve)
    })
  }
}

function daemon(name: string, env: NodeJS.ProcessEnv, relayAddr: string): Daemon {
  const d = new Daemon(['--name', name, '--listen', 'none', '--relay', relayAddr], env)
  procs.push(d)
  return d
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('claudemesh file', () => {
  it(`moves a ${MB} MB file between two homes through a relay only; kill -9 of the receiver mid-transfer resumes`, async () => {
    const envA = await newHome()
    const envB = await newHome()
    expect((await cli(['mesh', 'create', 'team'], envA)).code).toBe(0)
    const r = relay(envA)
    const relayAddr = await r.ready
    const invite = await cli(['mesh', 'invite', 'team'], envA)
    expect((await cli(['mesh', 'join', invite.stdout.trim()], envB)).code).toBe(0)
    const alice = daemon('alice', envA, relayAddr)
    let bob = daemon('bob', envB, relayAddr)
    await alice.line(/^\+ bob /, 60_000)
    const bobSession = (await bob.line(/session (\S+)$/))[1] as string

    const data = randomBytes(MB * 1024 * 1024)
    const src = join(envA.CLAUDEMESH_HOME as string, 'payload.bin')
    await writeFile(src, data)
    const shared = await cli(['file', 'share', src, '--to', 'bob', '--json'], envA)
    expect(shared.code, shared.stderr).toBe(0)
    const id = (JSON.parse(shared.stdout) as { file: { id: string; chunks: number } }).file.id
    await bob.line(/^> alice: Shared a file: "payload.bin"/, 30_000)

    // bob starts fetching; once a few chunks are on his disk his daemon is killed -9
    const chunkDir = join(envB.CLAUDEMESH_HOME as string, 'files', 'team', bobSession, id)
    const dest = join(envB.CLAUDEMESH_HOME as string, 'got.bin')
    const first = cli(['file', 'get', id, dest, '--json'], envB)
    await chunksOnDisk(chunkDir, 3, 60_000)
    await bob.stop('SIGKILL')
    expect((await first).code).not.toBe(0)
    const kept = (await readdir(chunkDir)).filter(isChunk).length
    expect(kept).toBeGreaterThanOrEqual(3)
    expect(kept).toBeLessThan(MB)

    bob = daemon('bob', envB, relayAddr)
    await bob.line(/^\+ alice /, 60_000)
    const t0 = Date.now()
    const second = await cli(['file', 'get', id, dest, '--json'], envB)
    expect(second.code, second.stderr).toBe(0)
    const got = JSON.parse(second.stdout) as { path: string; fetchedBytes: number; reusedChunks: number; holders: string[] }
    expect(got.reusedChunks).toBeGreaterThanOrEqual(kept - 1)
    expect(got.fetchedBytes).toBeLessThan(data.byteLength)
    expect(second.stderr).not.toMatch(/\[#/)
    expect(sha(await readFile(got.path))).toBe(sha(data))
    const ls = JSON.parse((await cli(['file', 'ls', '--json'], envB)).stdout) as {
      files: Array<{ id: string; state: string; role: string }>
    }
    expect(ls.files).toEqual([expect.objectContaining({ id, state: 'complete', role: 'fetched' })])
    process.stderr.write(`${JSON.stringify({ files: 'relay-only resume', mb: MB, resumeMs: Date.now() - t0, reused: got.reusedChunks })}\n`)
  }, 240_000)

  it('refuses a file above the cap with one line and writes nothing; file ls, unpin and usage errors', async () => {
    const env = await newHome()
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const d = new Daemon(['--name', 'solo'], { ...env, CLAUDEMESH_MAX_FILE_MB: '1' })
    procs.push(d)
    await d.ready()
    const big = join(env.CLAUDEMESH_HOME as string, 'big.bin')
    await writeFile(big, randomBytes(1_200_000))
    const r = await cli(['file', 'share', big, '--to', '@all'], env)
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('claudemesh: big.bin is 1.2 MB; the limit is 1.0 MB (set CLAUDEMESH_MAX_FILE_MB to change it)\n')
    expect((await cli(['file', 'ls'], env)).stdout).toBe('no files\n')
    const small = join(env.CLAUDEMESH_HOME as string, 'small.bin')
    await writeFile(small, 'hello')
    const ok = await cli(['file', 'share', small, '--to', '@all', '--json'], env)
    expect(ok.code, ok.stderr).toBe(0)
    const id = (JSON.parse(ok.stdout) as { file: { id: string } }).file.id
    expect((await cli(['file', 'ls'], env)).stdout).toMatch(new RegExp(`^ID .*\\n${id.slice(0, 16)}  small.bin  0.0 MB  complete  shared`))
    expect((await cli(['file', 'unpin', id], env)).stdout).toBe(`unpinned ${id}\n`)
    const bad = await cli(['file', 'get', 'xyz'], env)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^claudemesh: invalid params for file.get: .*64 lowercase hex/)
  }, 60_000)
})
