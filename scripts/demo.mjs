#!/usr/bin/env node
// `npm run demo`: a real local mesh. Three `claudemesh daemon` processes share a fresh home,
// find each other with no flags, and each prints the peer list it sees; then a DM, a group
// message, shared state and memory go through them; then all stop.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'packages/cli/dist/claudemesh.mjs')
const home = mkdtempSync(join(tmpdir(), 'claudemesh-demo-'))
const env = { ...process.env, CLAUDEMESH_HOME: home }
const cm = (...args) => execFileSync(process.execPath, [bin, ...args], { env, encoding: 'utf8' })

console.log(`$ claudemesh mesh create demo      (CLAUDEMESH_HOME=${home})`)
console.log(cm('mesh', 'create', 'demo').trim())
const names = ['alice', 'bob', 'carol']
const daemons = names.map(name => {
  console.log(`$ claudemesh daemon --name ${name} --role ${name === 'alice' ? 'lead' : 'dev'} &`)
  const p = spawn(process.execPath, [bin, 'daemon', '--name', name, '--role', name === 'alice' ? 'lead' : 'dev', '--groups', name === 'alice' ? 'core:lead' : 'core'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  p.stdout.on('data', d => process.stdout.write(`  [${name}] ${d}`))
  return p
})

const deadline = Date.now() + 20_000
let ok = false
while (Date.now() < deadline && !ok) {
  await new Promise(resolve => setTimeout(resolve, 250))
  try {
    ok = names.every(n => JSON.parse(cm('peers', '--name', n, '--json')).peers.filter(p => p.online).length === names.length - 1)
  } catch {}
}
for (const n of names) {
  console.log(`\n$ claudemesh peers --name ${n}`)
  console.log(cm('peers', '--name', n).trimEnd())
}
if (ok) {
  // a message, a group message, shared state and memory, through the running daemons
  const show = (...args) => {
    console.log(`\n$ claudemesh ${args.join(' ')}`)
    console.log(cm(...args).trimEnd())
  }
  show('send', 'bob', 'can you review the parser?', '--name', 'alice', '--priority', 'now')
  show('send', '@core', 'standup in 5 minutes', '--name', 'alice')
  show('state', 'set', 'release/freeze', '{"until":"friday"}', '--name', 'alice')
  show('remember', 'the staging database runs on db-2', '--tags', 'infra', '--name', 'carol')
  const deadline2 = Date.now() + 10_000
  while (Date.now() < deadline2) {
    const inbox = JSON.parse(cm('inbox', '--name', 'bob', '--keep-unread', '--json'))
    const state = JSON.parse(cm('state', 'get', 'release/freeze', '--name', 'bob', '--json'))
    if (inbox.messages.length >= 2 && state != null) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  show('inbox', '--name', 'bob')
  show('state', 'get', 'release/freeze', '--name', 'bob')
  show('recall', 'staging db', '--name', 'bob')
}
for (const d of daemons) d.kill('SIGTERM')
await Promise.all(daemons.map(d => new Promise(resolve => d.once('exit', resolve))))
rmSync(home, { recursive: true, force: true })
console.log(ok ? '\nall three daemons found each other; stopped cleanly.' : '\nthe daemons did not all find each other within 20 s')
process.exit(ok ? 0 : 1)
