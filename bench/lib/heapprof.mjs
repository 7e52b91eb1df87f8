#!/usr/bin/env node
// Summarise a V8 sampling heap profile (.heapprofile, from an agent run with
// BENCH_HEAPPROF=<dir>, lib/agent.mjs): bytes allocated by function (self) and including
// callees, of the objects still alive or collected by a major GC, i.e. what reached the old
// generation (objects a scavenge collected are left out by the profiler's flags).
//   node bench/lib/heapprof.mjs <file.heapprofile> [--top 30] [--callers <function substring> [--depth 4]]
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const file = args[0]
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const top = Number(opt('--top', 30))
const callers = opt('--callers')
const depth = Number(opt('--depth', 4))
const profile = JSON.parse(readFileSync(file, 'utf8'))
const short = u => u.replace(/^.*\/(packages|node_modules)\//, '$1/').replace(/\.pnpm\/[^/]+\/node_modules\//, '')
const key = f => `${f.functionName || '(anon)'} ${short(f.url)}:${f.lineNumber}`
const mb = x => (x / 1048576).toFixed(1).padStart(7)
const self = new Map()
const incl = new Map()
const paths = new Map()
let total = 0
function walk(node, stack) {
  const k = key(node.callFrame)
  const here = [...stack, k]
  total += node.selfSize
  self.set(k, (self.get(k) ?? 0) + node.selfSize)
  if (callers != null && k.includes(callers) && node.selfSize > 0) {
    const p = here
      .slice(-1 - depth)
      .reverse()
      .join(' <- ')
    paths.set(p, (paths.get(p) ?? 0) + node.selfSize)
  }
  let sub = node.selfSize
  for (const c of node.children ?? []) sub += walk(c, here)
  if (!stack.includes(k)) incl.set(k, (incl.get(k) ?? 0) + sub)
  return sub
}
walk(profile.head, [])
const list = m =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${mb(v)} ${k}`)
    .join('\n')
console.log(`sampled MB ${mb(total)}`)
if (callers != null) {
  console.log(`--- self bytes of frames matching "${callers}", by call stack\n${list(paths)}`)
} else {
  console.log(`--- self, MB\n${list(self)}`)
  console.log(`--- including callees (workspace frames), MB\n${list(new Map([...incl].filter(([k]) => k.includes('packages/'))))}`)
}
