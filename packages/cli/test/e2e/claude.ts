// Provides the real Claude Code binary for end-to-end tests: the pinned npm release,
// installed once into <repo>/.cache/claude-code/<version>, or CLAUDEMESH_CLAUDE_BIN.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export const CLAUDE_VERSION = '2.1.328'
const PKG = '@anthropic-ai/claude-code'
export const CACHE_DIR = resolve(import.meta.dirname, '../../../../.cache/claude-code')
const INSTALL_DIR = join(CACHE_DIR, CLAUDE_VERSION)

export type ClaudeBin = { bin: string; version: string } | { skip: string }

let pending: Promise<ClaudeBin> | undefined

/** The `claude` executable to test against, or why there is none (one line, for `it.skipIf`). */
export async function ensureClaude(): Promise<ClaudeBin> {
  pending ??= locate()
  return pending
}

async function locate(): Promise<ClaudeBin> {
  const given = process.env.CLAUDEMESH_CLAUDE_BIN
  if (given != null && given !== '') return probe(given, 'CLAUDEMESH_CLAUDE_BIN')
  try {
    if ((await installedVersion(INSTALL_DIR)) !== CLAUDE_VERSION) await install()
    const bin = await nativeBin(INSTALL_DIR)
    if (bin == null) return { skip: `${PKG}@${CLAUDE_VERSION} ships no native binary for ${process.platform}-${process.arch}` }
    return probe(bin, `${PKG}@${CLAUDE_VERSION}`)
  } catch (err) {
    return { skip: `cannot install ${PKG}@${CLAUDE_VERSION}: ${oneLine(err)}` }
  }
}

async function installedVersion(dir: string): Promise<string | undefined> {
  try {
    const pkg = JSON.parse(await readFile(join(dir, 'node_modules', PKG, 'package.json'), 'utf8')) as { version?: string }
    return pkg.version
  } catch {
    return undefined
  }
}

/** npm install into a private temp dir, then rename it into place: concurrent callers never see a half install. */
async function install(): Promise<void> {
  const tmp = join(CACHE_DIR, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`)
  await mkdir(tmp, { recursive: true })
  try {
    // --ignore-scripts: the postinstall only copies the platform binary over a stub; we use that binary directly.
    await exec(
      'npm',
      [
        'install',
        '--prefix',
        tmp,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--loglevel=error',
        `${PKG}@${CLAUDE_VERSION}`
      ],
      300_000
    )
    if ((await installedVersion(tmp)) !== CLAUDE_VERSION) throw new Error('npm install left no package.json')
    try {
      await rename(tmp, INSTALL_DIR)
    } catch {
      // Another process won the race (its copy is as good as ours), or a broken copy is in the way.
      if ((await installedVersion(INSTALL_DIR)) === CLAUDE_VERSION) return
      const trash = `${tmp}-broken`
      await rename(INSTALL_DIR, trash).catch(() => {})
      await rm(trash, { recursive: true, force: true })
      await rename(tmp, INSTALL_DIR)
    }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/**
 * The package's `bin/claude.exe` is a stub until its postinstall copies the native binary over it;
 * the real entry is `claude` in the platform package (`@anthropic-ai/claude-code-linux-x64`, …).
 */
async function nativeBin(dir: string): Promise<string | undefined> {
  const arch = `${process.platform}-${process.arch}`
  const names = [`${PKG}-${arch}`, `${PKG}-${arch}-musl`]
  for (const name of names) {
    const bin = join(dir, 'node_modules', name, process.platform === 'win32' ? 'claude.exe' : 'claude')
    if (existsSync(bin)) return bin
  }
  return undefined
}

async function probe(bin: string, what: string): Promise<ClaudeBin> {
  try {
    const out = await exec(bin, ['--version'], 30_000)
    const version = out.match(/\d+\.\d+\.\d+/)?.[0]
    if (version == null) return { skip: `${what}: \`${bin} --version\` printed no version: ${oneLine(out)}` }
    return { bin, version }
  } catch (err) {
    return { skip: `${what}: \`${bin} --version\` failed: ${oneLine(err)}` }
  }
}

async function exec(cmd: string, args: string[], timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err != null) reject(new Error(`${err.message} ${stderr}`))
      else resolve(stdout)
    })
  })
}

function oneLine(x: unknown): string {
  const s = x instanceof Error ? x.message : String(x)
  return s.replace(/\s+/g, ' ').trim().slice(0, 300)
}
