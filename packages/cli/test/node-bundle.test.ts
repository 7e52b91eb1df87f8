/**
 * The code-cached start of the roles that run a node (src/node-bundle.ts): the cache is written
 * private, used by the next start, refused (and the bundle compiled from source) when it is
 * damaged, never read from a home others can write, and the bundle the build makes runs.
 */
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { cacheFile, loadBundle } from '../src/node-bundle.js'
import { BIN } from './helpers.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A home (0700) holding a small bundle of the built shape: a CommonJS function expression exporting main. */
function fixture(): { home: string; file: string; cache: string } {
  const home = mkdtempSync(join(tmpdir(), 'claudemesh-codecache-'))
  dirs.push(home)
  chmodSync(home, 0o700)
  const file = join(home, 'bundle.cjs')
  // enough functions, run once, that the cache holds something to refuse when damaged
  const fns = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x + ${i} }`).join('\n')
  writeFileSync(
    file,
    `(function (exports, require, module, __filename, __dirname) {"use strict";\n${fns}\n` +
      `exports.main = async argv => { let s = 0; ${Array.from({ length: 200 }, (_, i) => `s = f${i}(s);`).join(' ')} ` +
      `return argv.length + s + (require('node:path').basename(__filename) === 'bundle.cjs' ? 0 : 1000) }})`
  )
  const cache = cacheFile({ CLAUDEMESH_HOME: home }, file, 'daemon')
  if (cache == null) throw new Error('a private home gave no cache file')
  return { home, file, cache }
}

const SUM = (199 * 200) / 2

describe('code cache', () => {
  it('is written 0600 in a 0700 directory, then used by the next start', async () => {
    const { file, cache } = fixture()
    const first = loadBundle(file, cache)
    expect(first.cache).toBe('none')
    expect(await first.main(['a', 'b'])).toBe(2 + SUM)
    first.save()
    expect(statSync(cache).mode & 0o777).toBe(0o600)
    expect(statSync(dirname(cache)).mode & 0o777).toBe(0o700)
    const second = loadBundle(file, cache)
    expect(second.cache).toBe('used')
    expect(await second.main([])).toBe(SUM)
  })

  it('a damaged cache is refused and the bundle still runs from source', async () => {
    const { file, cache } = fixture()
    const first = loadBundle(file, cache)
    await first.main([])
    first.save()
    const bytes = readFileSync(cache)
    // flip bytes past V8's header: its checksum or its sanity checks refuse the rest
    for (let i = 64; i < bytes.length; i += 7) bytes[i] = (bytes[i] as number) ^ 0xff
    writeFileSync(cache, bytes)
    const next = loadBundle(file, cache)
    expect(next.cache).toBe('rejected')
    expect(await next.main(['x'])).toBe(1 + SUM)
    // an intact cache of another source: V8 refuses it
    next.save()
    expect(loadBundle(file, cache).cache).toBe('used')
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// changed\n`)
    const changed = loadBundle(file, cache)
    expect(changed.cache).toBe('rejected')
    expect(await changed.main([])).toBe(SUM)
  })

  it('is neither read from nor written to a home that others can write', async () => {
    const { home, file, cache } = fixture()
    const first = loadBundle(file, cache)
    await first.main([])
    first.save()
    chmodSync(home, 0o777)
    expect(cacheFile({ CLAUDEMESH_HOME: home }, file, 'daemon')).toBeUndefined()
    chmodSync(home, 0o700)
    // a cache file others can write is not read
    chmodSync(cache, 0o666)
    expect(loadBundle(file, cache).cache).toBe('none')
  })

  it("one file per role, keyed by the bundle; a role with none starts from another's", async () => {
    const { home, file, cache } = fixture()
    const mcp = cacheFile({ CLAUDEMESH_HOME: home }, file, 'mcp') as string
    expect(mcp).not.toBe(cache)
    const daemon = loadBundle(file, cache)
    await daemon.main([])
    daemon.save()
    const borrowed = loadBundle(file, mcp)
    expect(borrowed.cache).toBe('borrowed')
    borrowed.save()
    expect(loadBundle(file, mcp).cache).toBe('used')
    expect(statSync(cache).isFile()).toBe(true)
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n`)
    const next = cacheFile({ CLAUDEMESH_HOME: home }, file, 'daemon') as string
    expect(next).not.toBe(cache)
    // the new bundle's cache replaces the daemon's old one (and a temp file a crash left), not the mcp's
    writeFileSync(`${cache}.123.tmp`, 'x')
    const b = loadBundle(file, next)
    expect(b.cache).toBe('none')
    b.save()
    expect(readdirSync(dirname(cache)).sort()).toEqual([basename(mcp), basename(next)].sort())
    // a bundle at another path (another install) keeps its own beside them
    const elsewhere = join(home, 'other.cjs')
    writeFileSync(elsewhere, readFileSync(file))
    const other = loadBundle(elsewhere, cacheFile({ CLAUDEMESH_HOME: home }, elsewhere, 'daemon'))
    other.save()
    expect(readdirSync(dirname(cache)).length).toBe(3)
  })

  it('a role that sets the node heap flags finds its cache on the next start, whether it wrote it before or after its node started', async () => {
    // each start its own process: V8's flags are the process's, and a cache is checked against them
    const { file, cache } = fixture()
    const heap = pathToFileURL(join(import.meta.dirname, '../../node/dist/heap.js')).href
    const loader = pathToFileURL(join(dirname(BIN), 'node-bundle.js')).href
    const start = async (saveBeforeStarted: boolean): Promise<string> =>
      await new Promise((resolve, reject) => {
        const save = 'rmSync(cache, { force: true }); b.save()\n'
        // what a role does: nodeFromFlags, its node's start, then its cache written 3 s in (a slow start: before it started)
        const script =
          `import { rmSync } from 'node:fs'\nimport { loadBundle } from ${JSON.stringify(loader)}\n` +
          `const h = await import(${JSON.stringify(heap)})\nconst cache = ${JSON.stringify(cache)}\n` +
          `const b = loadBundle(${JSON.stringify(file)}, cache)\nawait b.main([])\nh.nodeStarting()\n` +
          (saveBeforeStarted ? `${save}h.nodeStarted()\n` : `h.nodeStarted()\n${save}`) +
          'process.stderr.write(b.cache)'
        const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] })
        let err = ''
        p.stderr.on('data', d => {
          err += d
        })
        p.on('exit', code => (code === 0 ? resolve(err) : reject(new Error(`exit ${code}: ${err}`))))
      })
    expect(await start(false)).toBe('none')
    expect(await start(true)).toBe('used')
    expect(await start(false)).toBe('used')
  })

  it("the build's node bundle runs the CLI", async () => {
    // `claudemesh daemon --help` goes through bin.ts's node-role path into claudemesh-node.cjs
    const out = await new Promise<{ code: number | null; stdout: string }>(resolve => {
      const p = spawn(process.execPath, [BIN, 'daemon', '--help'], { env: { ...process.env, CLAUDEMESH_CODE_CACHE: '0' } })
      let stdout = ''
      p.stdout.on('data', d => {
        stdout += d
      })
      p.on('exit', code => resolve({ code, stdout }))
    })
    expect(out.code).toBe(0)
    expect(out.stdout).toContain('Usage: claudemesh daemon')
    const src = readFileSync(join(dirname(BIN), 'claudemesh-node.cjs'), 'latin1')
    expect(src.startsWith('(function (exports, require, module, __filename, __dirname) {"use strict";')).toBe(true)
  })
})
