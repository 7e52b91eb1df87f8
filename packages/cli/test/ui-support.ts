/** Test support for `claudemesh ui`: the command as a process, raw HTTP requests, Chromium. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createInterface } from 'node:readline'
import { afterEach } from 'vitest'
import { BIN } from './helpers.js'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

export interface Ui {
  url: string
  port: number
  token: string
  proc: ChildProcess
  stderr: string[]
  exited: Promise<number | null>
}

const running: ChildProcess[] = []
afterEach(() => {
  for (const p of running.splice(0)) if (p.exitCode == null && p.signalCode == null) p.kill('SIGKILL')
})

/** `claudemesh ui --json --no-open` on the named node; resolves once it printed {url, port}. */
export async function startUi(name: string, env: NodeJS.ProcessEnv): Promise<Ui> {
  const proc = spawn(process.execPath, [BIN, 'ui', '--json', '--no-open', '--name', name], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.push(proc)
  const stderr: string[] = []
  if (proc.stderr != null)
    createInterface({ input: proc.stderr }).on('line', l => {
      stderr.push(l)
    })
  const exited = new Promise<number | null>(resolve => {
    proc.once('exit', code => {
      resolve(code)
    })
  })
  let text = ''
  const printed = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`claudemesh ui printed nothing in 20 s: ${stderr.join('\n')}`))
    }, 20_000)
    proc.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8')
      try {
        resolve(JSON.parse(text) as { url: string; port: number })
        clearTimeout(timer)
      } catch {}
    })
    void exited.then(code => {
      clearTimeout(timer)
      reject(new Error(`claudemesh ui exited ${code}: ${stderr.join('\n')}`))
    })
  })
  const token = /\/t\/([^/]+)\//.exec(printed.url)?.[1] ?? ''
  return { ...printed, token, proc, stderr, exited }
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request with exactly these headers (Host included), to 127.0.0.1:port. */
export async function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { host: `127.0.0.1:${port}`, ...(body != null ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers },
        setHost: false
      },
      res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => {
          chunks.push(c)
        })
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })
        })
        res.on('error', reject)
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Debian's chromium at /usr/bin/chromium, installed with apt-get when missing and this process
 * is root (as on CI); otherwise the reason it cannot be had, for the test to print and skip.
 */
export async function ensureChromium(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (existsSync(CHROMIUM)) return { ok: true }
  if (process.platform !== 'linux') return { ok: false, reason: `no ${CHROMIUM} and this is not Linux` }
  if (process.getuid?.() !== 0) return { ok: false, reason: `no ${CHROMIUM}, and only root can install it (apt-get install -y chromium)` }
  if (!existsSync('/usr/bin/apt-get')) return { ok: false, reason: `no ${CHROMIUM} and no apt-get to install it` }
  const run = async (args: string[]): Promise<string | null> =>
    new Promise(resolve => {
      execFile(
        'apt-get',
        args,
        { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 540_000, maxBuffer: 64 * 1024 * 1024 },
        (err, _out, stderr) => {
          resolve(err == null ? null : `${err.message.split('\n')[0]} ${stderr.slice(-300)}`)
        }
      )
    })
  const failed = (await run(['update', '-qq'])) ?? (await run(['install', '-y', '-qq', 'chromium']))
  if (failed != null || !existsSync(CHROMIUM))
    return { ok: false, reason: `apt-get could not install chromium: ${failed ?? 'no binary after install'}` }
  return { ok: true }
}

/** `claudemesh relay` for mesh "team" on a random loopback port; resolves with its address once it printed it. */
export async function startRelay(env: NodeJS.ProcessEnv): Promise<{ addr: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [BIN, 'relay', '--mesh', 'team', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'error'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  running.push(proc)
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error('claudemesh relay printed no address in 30 s'))
    }, 30_000)
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once('line', line => {
      clearTimeout(timer)
      resolve(line)
    })
    proc.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`claudemesh relay exited ${code} before it was ready`))
    })
  })
  return { addr, proc }
}
