#!/usr/bin/env node
// Summarise V8 .cpuprofile files (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=<dir> for the
// messaging agents): self time by function and by package, summed over the files given.
// Workspace dist/ frames are mapped back to src/ file:line through their source maps.
//   node bench/lib/cpuprof.mjs <file-or-dir>... [--match <substring>] [--top 30] [--json]
//     [--callers <function substring> [--depth 6]]   (self time of matching frames by call stack)
//     [--inclusive]                                   (also time including callees, by function)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const maps = new Map()

function sourceMapFor(file) {
  if (maps.has(file)) return maps.get(file)
  let map = null
  try {
    if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')))
  } catch {}
  maps.set(file, map)
  return map
}

/** Where a frame lives: a package name and a readable file:line (workspace frames in src/). */
export function locate(cf) {
  const url = cf.url ?? ''
  if (url === '') return { pkg: cf.functionName.startsWith('(') ? cf.functionName : '(native)', where: '' }
  if (url.startsWith('node:')) return { pkg: 'node:internal', where: url }
  let file = url
  try {
    if (url.startsWith('file:')) file = fileURLToPath(url)
  } catch {}
  const pnpm = file.match(/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/)
  if (pnpm != null) return { pkg: pnpm[1], where: `${pnpm[1]}/${pnpm[2]}:${cf.lineNumber + 1}` }
  const nm = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/)
  if (nm != null) return { pkg: nm[1], where: `${nm[1]}/${nm[2]}:${cf.lineNumber + 1}` }
  const ws = file.match(/\/packages\/([^/]+)\/dist\/(.*)$/)
  if (ws != null) {
    const pkg = `@claudemesh/${ws[1]}`
    const m = sourceMapFor(file)
    const e = m?.findEntry(cf.lineNumber, cf.columnNumber)
    if (e?.originalSource != null) {
      let src = e.originalSource
      try {
        if (src.startsWith('file:')) src = fileURLToPath(src)
      } catch {}
      if (!src.startsWith('/')) src = join(file, '..', src)
      return { pkg, where: `${relative(root, src)}:${e.originalLine + 1}` }
    }
    return { pkg, where: `${relative(root, file)}:${cf.lineNumber + 1}` }
  }
  return {
    pkg: file.startsWith(root) ? relative(root, file).split('/').slice(0, 2).join('/') : '(other)',
    where: `${file.startsWith(root) ? relative(root, file) : file}:${cf.lineNumber + 1}`
  }
}

export function summarize(files, top = 30, callersOf = null, depth = 6) {
  const byFn = new Map()
  const byPkg = new Map()
  const callers = new Map()
  const incl = new Map()
  let total = 0
  let idle = 0
  for (const f of files) {
    const prof = JSON.parse(readFileSync(f, 'utf8'))
    const nodes = new Map(prof.nodes.map(n => [n.id, n]))
    const parent = new Map()
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    const label = cf => `${cf.functionName || '(anonymous)'} ${locate(cf).where}`.trim()
    const self = new Map()
    const deltas = prof.timeDeltas
    for (let i = 0; i < prof.samples.length; i++) {
      // a sample's time: the gap to the next sample (the last one gets the previous gap)
      const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000
      self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt)
    }
    // inclusive time: each distinct frame on a sampled stack gets the sample's time once
    const inclKeys = new Map()
    const inclOf = id => {
      let ks = inclKeys.get(id)
      if (ks == null) {
        const set = new Set()
        for (let p = id; p != null; p = parent.get(p)) {
          const cf = nodes.get(p).callFrame
          if (cf.functionName === '(root)') break
          set.add(label(cf))
        }
        inclKeys.set(id, (ks = [...set]))
      }
      return ks
    }
    for (const [id, ms] of self) {
      const cf = nodes.get(id).callFrame
      if (cf.functionName !== '(idle)') for (const k of inclOf(id)) incl.set(k, (incl.get(k) ?? 0) + ms)
      if (cf.functionName === '(idle)') {
        idle += ms
        continue
      }
      total += ms
      const { pkg, where } = locate(cf)
      const key = `${cf.functionName || '(anonymous)'} ${where}`.trim()
      byFn.set(key, (byFn.get(key) ?? 0) + ms)
      byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + ms)
      if (callersOf != null && key.includes(callersOf)) {
        const chain = []
        for (let p = parent.get(id); p != null && chain.length < depth; p = parent.get(p)) {
          const pcf = nodes.get(p).callFrame
          if (pcf.functionName === '(root)') break
          chain.push(label(pcf))
        }
        const ck = [key, ...chain].join('\n      <- ')
        callers.set(ck, (callers.get(ck) ?? 0) + ms)
      }
    }
  }
  const rows = m =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, ms]) => ({ ms: Math.round(ms), pct: Number(((100 * ms) / total).toFixed(1)), what: k }))
  return {
    files: files.length,
    busyMs: Math.round(total),
    idleMs: Math.round(idle),
    byPackage: rows(byPkg).slice(0, top),
    byFunction: rows(byFn).slice(0, top),
    inclusive: rows(incl).slice(0, top),
    ...(callersOf != null ? { callers: rows(callers).slice(0, top) } : {})
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const opt = name => {
    const i = args.indexOf(name)
    if (i < 0) return undefined
    const v = args[i + 1]
    args.splice(i, 2)
    return v
  }
  const top = Number(opt('--top') ?? 30)
  const match = opt('--match')
  const callersOf = opt('--callers')
  const depth = Number(opt('--depth') ?? 6)
  const json = args.includes('--json')
  const paths = args.filter(a => a !== '--json' && a !== '--inclusive')
  const files = paths
    .flatMap(p =>
      statSync(p).isDirectory()
        ? readdirSync(p)
            .filter(f => f.endsWith('.cpuprofile'))
            .map(f => join(p, f))
        : [p]
    )
    .filter(f => match == null || f.includes(match))
  const s = summarize(files, top, callersOf, depth)
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`)
  } else {
    console.log(`${s.files} profile(s): ${s.busyMs} ms busy, ${s.idleMs} ms idle`)
    console.log('\nself time by package:')
    for (const r of s.byPackage) console.log(`${String(r.ms).padStart(8)} ms ${String(r.pct).padStart(5)} %  ${r.what}`)
    console.log('\nself time by function:')
    for (const r of s.byFunction) console.log(`${String(r.ms).padStart(8)} ms ${String(r.pct).padStart(5)} %  ${r.what}`)
    if (args.includes('--inclusive') || process.argv.includes('--inclusive')) {
      console.log('\ninclusive time by function (self + callees):')
      for (const r of s.inclusive) console.log(`${String(r.ms).padStart(8)} ms ${String(r.pct).padStart(5)} %  ${r.what}`)
    }
    if (s.callers != null) {
      console.log(`\ncall stacks of "${callersOf}":`)
      for (const r of s.callers) console.log(`${String(r.ms).padStart(8)} ms ${String(r.pct).padStart(5)} %  ${r.what}`)
    }
  }
}
