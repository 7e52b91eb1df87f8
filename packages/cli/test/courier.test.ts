/**
 * Delivery survives the sender, as users run it (SPEC.md §8.7): a daemon stopped right after
 * `send` leaves its DM to a courier process, which hands it to the relay when the relay is
 * back; the recipient gets it when it comes up; the sender sees `held`, then `delivered`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { listRunning } from '@claudemesh/node/client'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, cli, Daemon } from './helpers.js'

const daemons: Daemon[] = []
const relays: RelayProc[] = []
const homes: string[] = []

afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(relays.splice(0).map(async r => r.stop('SIGKILL')))
  // no courier outlives its test
  for (const h of homes) {
    for (const e of await listRunning(h, 'team').catch(() => []))
      if (e.kind === 'courier')
        try {
          process.kill(e.pid, 'SIGKILL')
        } catch {}
  }
  await Promise.all(homes.splice(0).map(async h => rm(h, { recursive: true, force: true })))
})

/** `claudemesh relay` on a fixed port, so that it comes back at the same address. */
class RelayProc {
  readonly proc: ChildProcess
  readonly exited: Promise<number | null>
  readonly ready: Promise<string>
  constructor(env: NodeJS.ProcessEnv, port: number) {
    this.proc = spawn(
      process.execPath,
      [BIN, 'relay', '--mesh', 'team', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--log-level', 'error'],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] }
    )
    this.exited = new Promise(resolve => {
      this.proc.once('exit', code => {
        resolve(code)
      })
    })
    this.ready = new Promise((resolve, reject) => {
      createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).once('line', resolve)
      void this.exited.then(code => {
        reject(new Error(`relay exited (${code}) before it was ready`))
      })
    })
    relays.push(this)
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) this.proc.kill(signal)
    return this.exited
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => {
        resolve(typeof a === 'object' && a != null ? a.port : 0)
      })
    })
  })
}

function daemon(args: string[], env: NodeJS.ProcessEnv): Daemon {
  const d = new Daemon(args, env)
  daemons.push(d)
  return d
}

interface Status {
  status: string
  times: Record<string, number>
}

/** Bounded poll of `claudemesh status` until `ok` holds. */
async function pollStatus(args: string[], env: NodeJS.ProcessEnv, ok: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const r = await cli(['status', ...args, '--json'], env)
    last = `${r.code}: ${r.stdout}${r.stderr}`
    if (r.code === 0 && ok(JSON.parse(r.stdout) as Status)) return JSON.parse(r.stdout) as Status
    if (Date.now() > deadline) throw new Error(`claudemesh status ${args.join(' ')}: not reached within ${timeoutMs} ms; last: ${last}`)
    await sleep(200)
  }
}

async function couriers(env: NodeJS.ProcessEnv): Promise<number[]> {
  return (await listRunning(env.CLAUDEMESH_HOME as string, 'team')).filter(e => e.kind === 'courier').map(e => e.pid)
}

describe('a DM outlives its sender', () => {
  it('a daemon SIGTERMed right after send, its relay up: the stop waits for the relay, so the DM is held on its disk before it exits; the recipient gets it later', async () => {
    const h = await mkdtemp(join(tmpdir(), 'cm-courier-'))
    homes.push(h)
    const env = { CLAUDEMESH_HOME: h, CLAUDEMESH_SESSION: '' }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const relay = new RelayProc(env, await freePort())
    const relayAddr = await relay.ready
    const bob = daemon(['--name', 'bob', '--relay', relayAddr], env)
    const alice = daemon(['--name', 'alice', '--relay', relayAddr], env)
    await Promise.all([bob.ready(), alice.ready()])
    await alice.line(/^\+ bob /, 30_000)
    expect(await bob.stop()).toBe(0)
    await alice.line(/^- bob /, 30_000)
    // alice's mailbox stream is open before the send (doctor-level truth through `info`)
    const deadline = Date.now() + 30_000
    for (;;) {
      const info = JSON.parse((await cli(['info', '--name', 'alice', '--json'], env)).stdout) as { relays: Array<{ mailbox: boolean }> }
      if (info.relays.some(r => r.mailbox)) break
      if (Date.now() > deadline) throw new Error('alice never opened her mailbox stream')
      await sleep(200)
    }
    const sent = await cli(['send', 'bob', 'just before I go', '--name', 'alice', '--json'], env)
    expect(sent.code, sent.stderr).toBe(0)
    const id = (JSON.parse(sent.stdout) as Array<{ id: string }>)[0]?.id as string
    expect(await alice.stop('SIGTERM')).toBe(0)
    // her store, read back by a node that has no relay (so nothing can change it now): held
    const check = daemon(['--name', 'alice'], env)
    await check.ready()
    expect((await pollStatus([id, '--name', 'alice'], env, () => true, 20_000)).status).toBe('held')
    expect(await check.stop()).toBe(0)
    expect(await couriers(env)).toEqual([])
    const bob2 = daemon(['--name', 'bob', '--relay', relayAddr], env)
    // from the mailbox before alice's presence reached the restarted bob, she shows as her id's last 8 characters
    await bob2.line(/^> (?:alice|[1-9A-HJ-NP-Za-km-z]{8}): just before I go$/, 30_000)
    const alice2 = daemon(['--name', 'alice', '--relay', relayAddr], env)
    await alice2.ready()
    expect((await pollStatus([id, '--name', 'alice'], env, x => x.status === 'delivered', 30_000)).status).toBe('delivered')
  }, 240_000)

  it('a daemon SIGTERMed right after send, its relay down: a courier takes the DM to the relay when it returns (held); the recipient gets it when it comes up; the sender reads delivered', async () => {
    const h = await mkdtemp(join(tmpdir(), 'cm-courier-'))
    homes.push(h)
    const env = { CLAUDEMESH_HOME: h, CLAUDEMESH_SESSION: '' }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const port = await freePort()
    let relay = new RelayProc(env, port)
    const relayAddr = await relay.ready
    const bob = daemon(['--name', 'bob', '--relay', relayAddr], env)
    const alice = daemon(['--name', 'alice', '--relay', relayAddr], env)
    await Promise.all([bob.ready(), alice.ready()])
    // bob must have met alice (and kept her record) to show her name from the mailbox later
    await Promise.all([alice.line(/^\+ bob /, 30_000), bob.line(/^\+ alice /, 30_000)])
    expect(await bob.stop()).toBe(0)
    await alice.line(/^- bob /, 30_000)
    expect(await relay.stop()).toBe(0)

    const sent = await cli(['send', 'bob', 'carried for me', '--name', 'alice', '--json'], env)
    expect(sent.code, sent.stderr).toBe(0)
    const [r] = JSON.parse(sent.stdout) as Array<{ id: string; status: string }>
    const id = r?.id as string
    expect(r?.status).toBe('pending')
    expect(await alice.stop('SIGTERM')).toBe(0)
    await alice.line(/1 DM\(s\) still queued; a courier \(pid \d+\)/)

    // the sender's session is gone; its courier answers for it, truthfully
    expect((await pollStatus([id, '--name', 'alice'], env, () => true, 20_000)).status).toBe('pending')
    expect(await couriers(env)).toHaveLength(1)
    const t0 = Date.now()
    relay = new RelayProc(env, port)
    expect(await relay.ready).toBe(relayAddr)
    // held by the relay: the courier's work is done and it exits
    const deadline = Date.now() + 90_000
    while ((await couriers(env)).length > 0 && Date.now() < deadline) await sleep(200)
    expect(await couriers(env)).toEqual([])
    const heldMs = Date.now() - t0

    const bob2 = daemon(['--name', 'bob', '--relay', relayAddr], env)
    await bob2.line(/^> alice: carried for me$/, 30_000)
    const alice2 = daemon(['--name', 'alice', '--relay', relayAddr], env)
    await alice2.ready()
    const s = await pollStatus([id, '--name', 'alice'], env, x => x.status === 'delivered', 30_000)
    expect(s.times.held).toBeTypeOf('number')
    expect(s.times.held).toBeLessThanOrEqual(s.times.delivered as number)
    process.stderr.write(`${JSON.stringify({ courier: 'relay-back-to-courier-exit', ms: heldMs })}\n`)
  }, 240_000)
})
