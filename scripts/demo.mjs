#!/usr/bin/env node
// `npm run demo`: a real local mesh. A relay starts; three `claudemesh daemon` processes share a
// fresh home and find each other with no flags; a fourth, dana, lives in another home (another
// "machine") and joins by invite, meeting the others through the relay. Each prints the peer
// list it sees; a DM, a group message, shared state and memory go through them; then dana goes
// away, alice messages her, the relay holds it sealed, and dana gets it when she returns.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = join(root, 'packages/cli/dist/claudemesh.mjs')
const dir = mkdtempSync(join(tmpdir(), 'claudemesh-demo-'))
const home = join(dir, 'laptop')
const env = { ...process.env, CLAUDEMESH_HOME: home }
const danaEnv = { ...process.env, CLAUDEMESH_HOME: join(dir, 'dana-laptop') }
const relayEnv = { ...process.env, CLAUDEMESH_HOME: join(dir, 'vps') }
const cm = (args, e = env) => execFileSync(process.execPath, [bin, ...args], { env: e, encoding: 'utf8' })
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const procs = []
const show = (args, e = env) => {
  console.log(`\n$ claudemesh ${args.join(' ')}`)
  console.log(cm(args, e).trimEnd())
}

/** Start a long-running claudemesh process; its stdout lines are echoed with a label. */
function start(label, args, e) {
  console.log(`$ claudemesh ${args.join(' ')} &`)
  const p = spawn(process.execPath, [bin, ...args], { env: e, stdio: ['ignore', 'pipe', label === 'relay' ? 'ignore' : 'inherit'] })
  const lines = []
  createInterface({ input: p.stdout }).on('line', line => {
    lines.push(line)
    console.log(`  [${label}] ${line}`)
  })
  p.exited = new Promise(resolve => p.once('exit', resolve))
  p.lines = lines
  procs.push(p)
  return p
}

/** Poll a condition (CLI verbs cross processes: nothing to wait on but their answers). */
async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    try {
      if (fn()) return true
    } catch {}
    await sleep(200)
  }
  console.log(`\n(${what} did not happen within ${ms / 1000} s)`)
  return false
}

let ok = false
try {
  console.log(`$ claudemesh mesh create demo      (CLAUDEMESH_HOME=${home})`)
  console.log(cm(['mesh', 'create', 'demo']).trim())
  // the relay: on a VPS in real life; it gets the connection secret only
  const relayToken = cm(['mesh', 'invite', 'demo', '--relay']).trim()
  console.log(`$ claudemesh mesh invite demo --relay\n${relayToken.slice(0, 32)}…`)
  const relay = start(
    'relay',
    ['relay', '--invite', relayToken, '--data', join(dir, 'vps', 'relay'), '--listen', '/ip4/127.0.0.1/tcp/0'],
    relayEnv
  )
  await until('the relay start', () => relay.lines.length > 0)
  show(['mesh', 'relays', 'demo', '--add', relay.lines[0]])
  const token = cm(['mesh', 'invite', 'demo']).trim()
  console.log(`$ CLAUDEMESH_HOME=${danaEnv.CLAUDEMESH_HOME} claudemesh mesh join ${token.slice(0, 24)}…`)
  console.log(cm(['mesh', 'join', token], danaEnv).trim())

  const names = ['alice', 'bob', 'carol']
  for (const name of names) {
    start(
      name,
      ['daemon', '--name', name, '--role', name === 'alice' ? 'lead' : 'dev', '--groups', name === 'alice' ? 'core:lead' : 'core'],
      env
    )
  }
  let dana = start('dana', ['daemon', '--name', 'dana', '--groups', 'core'], danaEnv)
  const online = (n, e = env) => JSON.parse(cm(['peers', '--name', n, '--json'], e)).peers.filter(p => p.online).length
  ok = await until('every daemon seeing the 3 others', () => names.every(n => online(n) === 3) && online('dana', danaEnv) === 3)
  for (const n of names) {
    console.log(`\n$ claudemesh peers --name ${n}`)
    console.log(cm(['peers', '--name', n]).trimEnd())
  }
  console.log('\n$ claudemesh peers --name dana      (on her own machine)')
  console.log(cm(['peers', '--name', 'dana'], danaEnv).trimEnd())
  if (ok) {
    show(['send', 'bob', 'can you review the parser?', '--name', 'alice', '--priority', 'now'])
    show(['send', '@core', 'standup in 5 minutes', '--name', 'alice'])
    show(['state', 'set', 'release/freeze', '{"until":"friday"}', '--name', 'alice'])
    show(['remember', 'the staging database runs on db-2', '--tags', 'infra', '--name', 'carol'])
    await until(
      'bob receiving both messages and the state',
      () =>
        JSON.parse(cm(['inbox', '--name', 'bob', '--keep-unread', '--json'])).messages.length >= 2 &&
        JSON.parse(cm(['state', 'get', 'release/freeze', '--name', 'bob', '--json'])) != null,
      10_000
    )
    show(['inbox', '--name', 'bob'])
    show(['state', 'get', 'release/freeze', '--name', 'bob'])
    show(['recall', 'staging db', '--name', 'bob'])

    // offline delivery through the relay's mailbox
    console.log('\n# dana closes her laptop')
    dana.kill('SIGTERM')
    await dana.exited
    await until(
      'alice seeing dana leave',
      () => JSON.parse(cm(['peers', '--name', 'alice', '--json'])).peers.some(p => p.name === 'dana' && !p.online),
      10_000
    )
    console.log('\n$ claudemesh send dana "the release notes are in docs/RELEASE.md" --name alice --json')
    const [sent] = JSON.parse(cm(['send', 'dana', 'the release notes are in docs/RELEASE.md', '--name', 'alice', '--json']))
    console.log(`  ${sent.id} → ${sent.status}`)
    await until('the relay holding it', () => JSON.parse(cm(['status', sent.id, '--name', 'alice', '--json'])).status === 'held', 10_000)
    show(['status', sent.id, '--name', 'alice'])
    console.log('\n# dana comes back')
    dana = start('dana', ['daemon', '--name', 'dana', '--groups', 'core'], danaEnv)
    ok = await until(
      'dana receiving it and alice seeing it delivered',
      () => JSON.parse(cm(['status', sent.id, '--name', 'alice', '--json'])).status === 'delivered'
    )
    show(['inbox', '--name', 'dana'], danaEnv)
    show(['status', sent.id, '--name', 'alice'])
  }
} finally {
  for (const p of procs) if (p.exitCode == null && p.signalCode == null) p.kill('SIGTERM')
  await Promise.all(procs.map(p => p.exited))
  rmSync(dir, { recursive: true, force: true })
}
console.log(
  ok
    ? '\nthe daemons found each other, directly and through the relay, and the relay delivered a message to a peer that was away; stopped cleanly.'
    : '\nthe demo did not complete (see above)'
)
process.exit(ok ? 0 : 1)
