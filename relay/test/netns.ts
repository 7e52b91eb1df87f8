/**
 * Multi-host tests on one Linux machine: network namespaces joined by veth pairs, so each
 * "host" has its own interfaces, addresses, routes and TCP stack, and links can be cut.
 *
 *          ┌──────────── R (relay) ─────────────┐
 *          │  lo: 127.0.0.1, 10.<n>.0.1/32      │   ip_forward off: A and B reach
 *          │  ra: 10.<n>.1.1/24  rb: 10.<n>.2.1 │   only R's addresses, never
 *          └─────┬────────────────────┬─────────┘   each other
 *      eth0 10.<n>.1.2/24     eth0 10.<n>.2.2/24
 *          A (member)             B (member)         each with a route to 10.<n>.0.1/32
 *
 * Everything is made and removed by the test (root only): names carry the test process's
 * pid, and namespaces left by a run that crashed are removed by the next run.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/** The CLI as users run it (the bundle from `pnpm -r run build`). */
export const BIN = join(import.meta.dirname, '../../packages/cli/dist/claudemesh.mjs')

/** Namespaces of these tests are named `<PREFIX><pid>-<host>`. */
export const PREFIX = 'cmnetns-'

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find(p => existsSync(p))

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Run a program to completion; never rejects (a failure is a non-zero `code`). */
export async function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise(resolve => {
    execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
      }
    )
  })
}

/** Why these tests cannot run here, or undefined when they can (tries a namespace for real). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root to include them)'
  if (IP == null) return 'the `ip` command (iproute2) is not installed'
  const probe = `${PREFIX}${process.pid}-probe`
  try {
    execFileSync(IP, ['netns', 'add', probe], { stdio: 'pipe' })
  } catch (err) {
    return `\`ip netns add\` fails here: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`
  }
  try {
    execFileSync(IP, ['netns', 'del', probe], { stdio: 'pipe' })
  } catch {}
  return undefined
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function ip(args: string[]): Promise<string> {
  const r = await run(IP as string, args)
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

/**
 * Remove namespaces of earlier runs whose test process is gone (it crashed or was killed):
 * the processes still inside them were started by that run, in its own namespace.
 */
export async function removeStale(): Promise<string[]> {
  const removed: string[] = []
  for (const line of (await ip(['netns', 'list'])).split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)
    if (m == null || alive(Number(m[1]))) continue
    for (const pid of (await run(IP as string, ['netns', 'pids', name])).stdout
      .split('\n')
      .map(Number)
      .filter(n => n > 0)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await run(IP as string, ['netns', 'del', name])
    removed.push(name)
  }
  return removed
}

export type Host = 'r' | 'a' | 'b'

/** One TCP connection as the kernel of a namespace lists it. */
export interface Tcp {
  local: string
  remote: string
  state: string
}

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '0A': 'LISTEN' }

/** The three-host topology above. */
export class Topology {
  readonly ns: Record<Host, string>
  /** the relay's service address, on R's loopback */
  readonly service: string
  readonly addr: { ra: string; a: string; rb: string; b: string }
  /** interface names: in R towards A and B, and in A and B towards R */
  readonly link = { ra: 'ra', rb: 'rb', a: 'eth0', b: 'eth0' }
  private made: string[] = []

  constructor(readonly net = 77) {
    const tag = `${PREFIX}${process.pid}`
    this.ns = { r: `${tag}-r`, a: `${tag}-a`, b: `${tag}-b` }
    this.service = `10.${net}.0.1`
    this.addr = { ra: `10.${net}.1.1`, a: `10.${net}.1.2`, rb: `10.${net}.2.1`, b: `10.${net}.2.2` }
  }

  async create(): Promise<void> {
    const { ns, addr, link } = this
    for (const h of ['r', 'a', 'b'] as const) {
      await ip(['netns', 'add', ns[h]])
      this.made.push(ns[h])
      await ip(['-n', ns[h], 'link', 'set', 'lo', 'up'])
    }
    // each veth pair is born with its ends in their namespaces: nothing appears in ours
    await ip(['link', 'add', link.ra, 'netns', ns.r, 'type', 'veth', 'peer', 'name', link.a, 'netns', ns.a])
    await ip(['link', 'add', link.rb, 'netns', ns.r, 'type', 'veth', 'peer', 'name', link.b, 'netns', ns.b])
    const cfg: Array<[string, string, string]> = [
      [ns.r, link.ra, addr.ra],
      [ns.a, link.a, addr.a],
      [ns.r, link.rb, addr.rb],
      [ns.b, link.b, addr.b]
    ]
    for (const [n, dev, a] of cfg) {
      await ip(['-n', n, 'addr', 'add', `${a}/24`, 'dev', dev])
      await ip(['-n', n, 'link', 'set', dev, 'up'])
    }
    await ip(['-n', ns.r, 'addr', 'add', `${this.service}/32`, 'dev', 'lo'])
    await ip(['-n', ns.a, 'route', 'add', `${this.service}/32`, 'via', addr.ra])
    await ip(['-n', ns.b, 'route', 'add', `${this.service}/32`, 'via', addr.rb])
    // a new namespace inherits IPv4 forwarding from the host's (on by default on Docker hosts)
    await ip(['netns', 'exec', ns.r, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward'])
  }

  async destroy(): Promise<void> {
    for (const n of this.made.splice(0)) await run(IP as string, ['netns', 'del', n])
  }

  /** `ip netns exec <host> …` to completion */
  async exec(host: Host, file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
    return run(IP as string, ['netns', 'exec', this.ns[host], file, ...args], opts)
  }

  /** Set a link up or down: `r-a`/`r-b` is R's end of the link to A/B, `a`/`b` the member's end. */
  async setLink(end: 'r-a' | 'r-b' | 'a' | 'b', state: 'up' | 'down'): Promise<void> {
    const [host, dev] = end === 'r-a' ? ['r', this.link.ra] : end === 'r-b' ? ['r', this.link.rb] : [end, this.link[end]]
    await ip(['-n', this.ns[host as Host], 'link', 'set', dev as string, state])
  }

  /** A sysctl of a namespace (`net.ipv4.ip_forward`), read from its /proc/sys/net. */
  async sysctl(host: Host, key: string): Promise<string> {
    return (await this.exec(host, 'cat', [`/proc/sys/${key.replace(/\./g, '/')}`])).stdout.trim()
  }

  /** A TCP connect from inside a namespace: 'connected', or the error code (ENETUNREACH, ETIMEDOUT…). */
  async connect(host: Host, to: string, port: number, timeoutMs = 3_000): Promise<string> {
    const script = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});
const done=r=>{process.stdout.write(r);s.destroy();process.exit(0)};
s.setTimeout(+process.argv[3],()=>done('ETIMEDOUT'));s.on('connect',()=>done('connected'));s.on('error',e=>done(e.code||e.message))`
    const r = await this.exec(host, process.execPath, ['-e', script, to, String(port), String(timeoutMs)], {
      timeoutMs: timeoutMs + 10_000
    })
    return r.stdout.trim() || `exit ${r.code}: ${r.stderr.trim()}`
  }

  /** The TCP connections of a namespace, from its kernel's table. */
  async tcp(host: Host): Promise<Tcp[]> {
    const r = await this.exec(host, 'cat', ['/proc/net/tcp'])
    const hexAddr = (s: string): string => {
      const [h = '', p = ''] = s.split(':')
      const ipv4 = [6, 4, 2, 0].map(i => Number.parseInt(h.slice(i, i + 2), 16)).join('.')
      return `${ipv4}:${Number.parseInt(p, 16)}`
    }
    return r.stdout
      .split('\n')
      .slice(1)
      .map(l => l.trim().split(/\s+/))
      .filter(f => f.length > 3)
      .map(f => ({ local: hexAddr(f[1] ?? ''), remote: hexAddr(f[2] ?? ''), state: TCP_STATES[f[3] ?? ''] ?? f[3] ?? '' }))
  }

  /** GET a URL from inside a namespace (e.g. the relay's health check on R's loopback). */
  async fetchJson<T = Record<string, unknown>>(host: Host, url: string): Promise<T> {
    const r = await this.exec(host, process.execPath, [
      '-e',
      'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(e.message);process.exit(1)})',
      url
    ])
    if (r.code !== 0) throw new Error(`GET ${url} in ${host}: ${r.stderr.trim()}`)
    return JSON.parse(r.stdout) as T
  }

  /** Start a long-running process inside a namespace. */
  spawn(host: Host, file: string, args: string[], env: NodeJS.ProcessEnv, label: string): Proc {
    return new Proc(IP as string, ['netns', 'exec', this.ns[host], file, ...args], env, label)
  }
}

/**
 * A running process whose stdout and stderr lines can be awaited. `ip netns exec` execs its
 * command, so the child's pid is the command's own and signals reach it directly.
 */
export class Proc {
  readonly proc: ChildProcess
  /** every line, stdout and stderr interleaved as they came */
  readonly lines: string[] = []
  readonly stdout: string[] = []
  readonly exited: Promise<number | null>
  exit?: { code: number | null; signal: NodeJS.Signals | null }
  private readonly waiters = new Set<{ re: RegExp; since: number; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }>()

  constructor(
    file: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    readonly label: string
  ) {
    this.proc = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      if (s != null)
        createInterface({ input: s }).on('line', line => {
          this.onLine(line, s === this.proc.stdout)
        })
    }
    this.exited = new Promise(resolve => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal }
        // let the last lines arrive before the waiters give up
        setImmediate(() => {
          for (const w of this.waiters)
            w.reject(new Error(`${this.label} exited (${code ?? signal}) before printing ${w.re}:\n${this.tail()}`))
          this.waiters.clear()
        })
        resolve(code)
      })
    })
  }

  private onLine(line: string, stdout: boolean): void {
    const n = this.lines.push(line) - 1
    if (stdout) this.stdout.push(line)
    for (const w of this.waiters) {
      const m = n >= w.since ? line.match(w.re) : null
      if (m != null) {
        this.waiters.delete(w)
        w.resolve(m)
      }
    }
  }

  /** A mark to wait from: the number of lines so far. */
  mark(): number {
    return this.lines.length
  }

  /** Lines since a mark that match. */
  since(mark: number, re: RegExp): string[] {
    return this.lines.slice(mark).filter(l => re.test(l))
  }

  /** The first line at or after `since` (a mark) matching `re`, past or future. */
  async line(re: RegExp, opts: { since?: number; timeoutMs?: number } = {}): Promise<RegExpMatchArray> {
    const since = opts.since ?? 0
    for (let i = since; i < this.lines.length; i++) {
      const m = this.lines[i]?.match(re)
      if (m != null) return m
    }
    if (this.exit != null)
      throw new Error(`${this.label} exited (${this.exit.code ?? this.exit.signal}) before printing ${re}:\n${this.tail()}`)
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 20_000
      const w = {
        re,
        since,
        resolve: (m: RegExpMatchArray) => {
          clearTimeout(timer)
          resolve(m)
        },
        reject: (e: Error) => {
          clearTimeout(timer)
          reject(e)
        }
      }
      const timer = setTimeout(() => {
        this.waiters.delete(w)
        reject(new Error(`${this.label}: no line matching ${re} within ${timeoutMs} ms:\n${this.tail()}`))
      }, timeoutMs)
      this.waiters.add(w)
    })
  }

  tail(n = 40): string {
    return this.lines
      .slice(-n)
      .map(l => `  [${this.label}] ${l}`)
      .join('\n')
  }

  get running(): boolean {
    return this.exit == null
  }

  /** Signal and wait for the exit; SIGKILL after `graceMs`. Resolves the exit code (null if killed). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
    if (this.exit != null) return this.exit.code
    this.proc.kill(signal)
    const timer = setTimeout(() => {
      this.proc.kill('SIGKILL')
    }, graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Poll `probe` until it returns something other than undefined; for what nothing else signals. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number } = {}
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
  let last: unknown
  while (true) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline)
      throw new Error(`timed out waiting for ${what}${last != null ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, opts.intervalMs ?? 200))
  }
}
