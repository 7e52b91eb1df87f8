/**
 * The bundle's split (scripts/bundle.mjs): a hook and the CLI's command parser load their code
 * without libp2p and the node, which only `daemon`, `mcp` and the like import, lazily. One
 * constant imported from the full package once put the whole node chunk (1 MB) in front of
 * every `claudemesh` command. Nor do they load zod's full API or the identity code (ed25519,
 * invites): what they validate uses `zod/mini` (hook 200 -> 160 ms, `peers` 240 -> 170 ms).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN } from './helpers.js'

const dir = dirname(BIN)

/** The chunks a file imports statically, transitively (its `import(...)`s not followed). */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen
  seen.add(file)
  const src = readFileSync(join(dir, file), 'utf8')
  for (const m of src.matchAll(/(import\(\s*)?["'](\.\/chunk-[A-Z0-9]+\.mjs)["']/g)) {
    if (m[1] == null) staticClosure((m[2] as string).slice(2), seen)
  }
  return seen
}

/** The chunks a file loads lazily (`import(...)`). */
function dynamicImports(file: string): string[] {
  const src = readFileSync(join(dir, file), 'utf8')
  return [...src.matchAll(/import\(\s*["'](\.\/chunk-[A-Z0-9]+\.mjs)["']\s*\)/g)].map(m => (m[1] as string).slice(2))
}

const loads = (files: Set<string>, marker: string): string[] => [...files].filter(f => readFileSync(join(dir, f), 'utf8').includes(marker))

/**
 * The first loads: the hook's own file, the CLI's index and the node roles' loader (the entry's
 * two chunk imports; node-bundle.ts then reads claudemesh-node.cjs, not a chunk).
 */
function entries(): string[] {
  const chunks = dynamicImports('claudemesh.mjs')
  expect(chunks.length).toBe(2)
  expect(readFileSync(join(dir, 'claudemesh.mjs'), 'utf8')).toContain('"./hook.mjs"')
  return ['hook.mjs', ...chunks]
}

describe('bundle', () => {
  it('neither a hook nor the command parser loads libp2p or the node before a command asks for it', () => {
    for (const entry of entries()) {
      const closure = staticClosure(entry)
      // libp2p's factory and the node's class: present in the bundle, not in these closures
      expect(loads(closure, 'createLibp2p'), entry).toEqual([])
      expect(loads(closure, 'MeshNode=class'), entry).toEqual([])
    }
    // and the markers are real: the bundle holds them somewhere a daemon loads
    const all = new Set(entries().flatMap(e => [...staticClosure(e)]))
    const lazily = new Set([...all].flatMap(dynamicImports).flatMap(d => [...staticClosure(d)]))
    expect(loads(lazily, 'createLibp2p').length).toBeGreaterThan(0)
    expect(loads(lazily, 'MeshNode=class').length).toBeGreaterThan(0)
  })

  it('neither a hook nor the command parser loads zod classic or ed25519', () => {
    // zod classic's object schema (mini's is "ZodMiniObject"); noble's curve, which identity loads
    const markers = ['"ZodObject"', 'ed25519']
    for (const entry of entries())
      for (const marker of markers) expect(loads(staticClosure(entry), marker), `${entry} ${marker}`).toEqual([])
    const lazily = new Set(
      entries()
        .flatMap(e => [...staticClosure(e)].flatMap(dynamicImports))
        .flatMap(d => [...staticClosure(d)])
    )
    for (const marker of markers) expect(loads(lazily, marker).length, marker).toBeGreaterThan(0)
  })

  it('the node roles loader imports only the home helpers before it reads claudemesh-node.cjs', () => {
    // every chunk evaluated here is compiled from source on each daemon/MCP start (no code cache
    // for ES modules): importing assertPrivate from the client entry once pulled in zod mini and
    // the control client, 250 KB and ~20 ms of every start
    const loader = entries().filter(e => readFileSync(join(dir, e), 'utf8').includes('cachedDataRejected'))
    expect(loader).toHaveLength(1)
    const bytes = [...staticClosure(loader[0] as string)].reduce((n, f) => n + readFileSync(join(dir, f)).byteLength, 0)
    expect(bytes).toBeLessThan(16_000)
  })

  it("a hook's file stands alone and holds only the part of zod it uses", () => {
    const hook = readFileSync(join(dir, 'hook.mjs'), 'utf8')
    expect(dynamicImports('hook.mjs')).toEqual([])
    expect(staticClosure('hook.mjs')).toEqual(new Set(['hook.mjs']))
    // zod's code generator for object parsers (core/compile.js), which only the daemon's schemas need
    expect(hook).not.toContain('ZodCompileUnsupportedError')
    expect(loads(new Set(readdirSync(dir).filter(f => f.startsWith('chunk-'))), 'ZodCompileUnsupportedError').length).toBeGreaterThan(0)
    expect(hook.length).toBeLessThan(100_000)
  })

  it('leaves out zod translations but keeps its English messages', () => {
    const chunks = readdirSync(dir).filter(f => f.endsWith('.mjs'))
    // a German message of zod's (locales/de.js), and the English one of the same check
    expect(chunks.filter(f => readFileSync(join(dir, f), 'utf8').includes('ltige Eingabe'))).toEqual([])
    expect(chunks.filter(f => readFileSync(join(dir, f), 'utf8').includes('Invalid input')).length).toBeGreaterThan(0)
  })
})
