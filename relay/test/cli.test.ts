/** `claudemesh relay` and the relay flags of the CLI, as users run them (the bundle). */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, cli } from '../../packages/cli/test/helpers.js'

/** A `claudemesh relay` process; resolves its printed addresses and logged JSON lines. */
class RelayProc {
  readonly proc: ChildProcess
  readonly addrs: string[] = []
  readonly logs: Array<Record<string, unknown>> = []
  readonly exited: Promise<number | null>
  private readonly readyP: Promise<string[]>

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, [BIN, 'relay', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    this.exited = new Promise(resolve => {
      this.proc.once('exit', code => {
        resolve(code)
      })
    })
    this.readyP = new Promise((resolve, reject) => {
      createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', line => {
        this.addrs.push(line)
        // every address is printed in one go once ready
        setImmediate(() => {
          resolve(this.addrs)
        })
      })
      void this.exited.then(code => {
        reject(new Error(`relay exited (${code}) before it was ready: ${JSON.stringify(this.logs)}`))
      })
    })
    createInterface({ input: this.proc.stderr as NodeJS.ReadableStream }).on('line', line => {
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        this.logs.push({ raw: line })
      }
    })
  }

  async ready(): Promise<string[]> {
    return this.readyP
  }
  get healthUrl(): string {
    return String(this.logs.find(l => l.msg === 'relay ready')?.health)
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) this.proc.kill(signal)
    return this.exited
  }
}

describe('claudemesh relay (CLI)', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  const procs: RelayProc[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-relay-cli-'))
    env = { CLAUDEMESH_HOME: join(dir, 'owner') }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
  })
  afterAll(async () => {
    await Promise.all(procs.map(async p => p.stop('SIGKILL')))
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses to start without a mesh, or with both --mesh and --invite, with one clear line', async () => {
    const none = await cli(['relay', '--data', join(dir, 'empty'), '--listen', '/ip4/127.0.0.1/tcp/0'], env)
    expect(none.code).not.toBe(0)
    expect(none.stderr).toMatch(/no mesh to serve: pass --invite <token>.*or --mesh <name>/)
    const both = await cli(['relay', '--mesh', 'team', '--invite', 'cm1.x'], env)
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--mesh or --invite, not both/)
    const bad = await cli(['daemon', '--relay', '/ip4/127.0.0.1/tcp/4001'], env)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/must end with \/p2p\/<relay id>/)
  })

  it('serves a relay invite: prints its addresses, answers /health, stops gracefully, keeps its identity and mesh', async () => {
    const token = (await cli(['mesh', 'invite', 'team', '--relay'], env)).stdout.trim()
    const data = join(dir, 'relay')
    const relayEnv = { CLAUDEMESH_HOME: join(dir, 'vps') }
    const r = new RelayProc(['--invite', token, '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--health', '127.0.0.1:0'], relayEnv)
    procs.push(r)
    const addrs = await r.ready()
    expect(addrs.length).toBeGreaterThan(0)
    for (const a of addrs) expect(a).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/)
    const id = addrs[0]?.split('/p2p/')[1]
    const health = (await (await fetch(r.healthUrl)).json()) as Record<string, unknown>
    expect(health).toMatchObject({ ok: true, status: 'running', peerId: id, mesh: 'team' })
    expect((await stat(join(data, 'relay.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(data, 'mesh.json'))).mode & 0o777).toBe(0o600)
    expect(await r.stop('SIGTERM')).toBe(0)
    expect(r.logs.map(l => l.msg)).toContain('relay stopped')
    // restarted with only --data: same id, same mesh; the invite is not needed again
    const again = new RelayProc(['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'], relayEnv)
    procs.push(again)
    expect((await again.ready())[0]?.split('/p2p/')[1]).toBe(id)
    expect(await again.stop('SIGINT')).toBe(0)
    // no log line carries a secret or the invite
    const kept = JSON.parse(await readFile(join(data, 'mesh.json'), 'utf8')) as { networkSecret: string }
    for (const l of [...r.logs, ...again.logs]) {
      const line = JSON.stringify(l)
      expect(line).not.toContain(kept.networkSecret)
      expect(line).not.toContain(token.slice(4, 40))
    }
  })

  it('mesh relays --add records a relay that later invites carry to members', async () => {
    const relayAddr = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWSCnokEe4CN7azwadr8KfqG1FT3ssnBCzWudEGD3okycE'
    const added = await cli(['mesh', 'relays', 'team', '--add', relayAddr, '--json'], env)
    expect(JSON.parse(added.stdout)).toEqual({ mesh: 'team', relays: [relayAddr] })
    const refused = await cli(['mesh', 'relays', 'team', '--add', '/ip4/127.0.0.1/tcp/4001'], env)
    expect(refused.code).toBe(2)
    const token = (await cli(['mesh', 'invite', 'team'], env)).stdout.trim()
    const member = { CLAUDEMESH_HOME: join(dir, 'member') }
    expect((await cli(['mesh', 'join', token], member)).code).toBe(0)
    expect((await cli(['mesh', 'relays', '--json'], member)).stdout).toContain(relayAddr)
    const removed = await cli(['mesh', 'relays', 'team', '--remove', relayAddr, '--json'], env)
    expect(JSON.parse(removed.stdout)).toEqual({ mesh: 'team', relays: [] })
  })
})
