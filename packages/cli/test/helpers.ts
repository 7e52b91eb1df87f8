import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach } from 'vitest'

/** The CLI as users run it: the bundle (see scripts/bundle.mjs). */
export const BIN = join(import.meta.dirname, '../dist/claudemesh.mjs')

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Run the built CLI to completion (in `cwd`, default this process's). */
export async function cli(args: string[], env: NodeJS.ProcessEnv, input = '', cwd?: string): Promise<Run> {
  return new Promise(resolve => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000, cwd },
      (err, stdout, stderr) => {
        resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
      }
    )
    child.stdin?.end(input)
  })
}

/** A running `claudemesh daemon` whose stdout and stderr lines can be awaited. */
export class Daemon {
  readonly proc: ChildProcess
  readonly lines: string[] = []
  readonly addrs: string[] = []
  private readonly waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = []
  readonly exited: Promise<number | null>

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, [BIN, 'daemon', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      if (s == null) continue
      createInterface({ input: s }).on('line', line => {
        this.onLine(line, s === this.proc.stdout)
      })
    }
    this.exited = new Promise(resolve => {
      this.proc.once('exit', code => {
        resolve(code)
      })
    })
  }

  private onLine(line: string, stdout: boolean): void {
    this.lines.push(line)
    if (stdout && line.startsWith('/')) this.addrs.push(line)
    for (const w of [...this.waiters]) {
      const m = line.match(w.re)
      if (m != null) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve(m)
      }
    }
  }

  /** Resolve on the first line (past or future) matching `re`. */
  async line(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const past = this.lines.map(l => l.match(re)).find(m => m != null)
    if (past != null) return past
    return new Promise((resolve, reject) => {
      const w = {
        re,
        resolve: (m: RegExpMatchArray) => {
          clearTimeout(timer)
          resolve(m)
        }
      }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`timed out waiting for ${re} in:\n${this.lines.join('\n')}`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }

  async ready(): Promise<string> {
    return (await this.line(/^\/ip4\/.*\/p2p\/\S+$/))[0]
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) this.proc.kill(signal)
    return this.exited
  }
}

/**
 * Per test file: a fresh home with mesh "team" (`home`), and `--name` daemons on it (`daemon`);
 * every daemon is killed and every home removed after each test.
 */
export function daemonWorld(prefix: string): {
  home: () => Promise<NodeJS.ProcessEnv>
  daemon: (name: string, env: NodeJS.ProcessEnv) => Daemon
} {
  const daemons: Daemon[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
    await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
  })
  return {
    home: async () => {
      const dir = await mkdtemp(join(tmpdir(), prefix))
      dirs.push(dir)
      const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
      await cli(['mesh', 'create', 'team'], env)
      return env
    },
    daemon: (name, env) => {
      const d = new Daemon(['--name', name], env)
      daemons.push(d)
      return d
    }
  }
}
