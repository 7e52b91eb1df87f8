/**
 * A hostile member (a real node) fills what it controls with terminal controls (ESC
 * sequences, BEL, CR, NUL), bidi and zero-width characters and line breaks; the victim reads
 * it through the built CLI. Human-readable output shows them as visible escapes and keeps
 * tables one line per row; `--json` stays exact.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMeshNode, type MeshNode } from '@claudemesh/node'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, Daemon } from './helpers.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

// biome-ignore lint/complexity/useRegexLiterals: as a literal, these escapes read as a misleading character class
const RAW = new RegExp(
  '[\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F\\u00AD\\u034F\\u061C\\u115F\\u180E\\u200B-\\u200F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069\\u3164\\uFE0F\\uFEFF\\uFFF9-\\uFFFB]',
  'u'
)
const EVIL = '\u0000\u0007\r\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e\u200b\u2029\n'
const NAME = `mal${EVIL}lory`
const ROLE = `r\u001b[5m\nole`
const KEY = `k\u001b[31m\u202e\nkey` // no NUL: it travels in argv

function clean(what: string, text: string): void {
  expect(RAW.test(text), `${what} printed a raw control: ${JSON.stringify(text)}`).toBe(false)
}

describe('hostile peer text on the terminal', () => {
  it('peers, inbox, recall, status, state get/list, info and the daemon log escape peer text; --json is exact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-hostile-'))
    cleanups.push(async () => rm(dir, { recursive: true, force: true }))
    const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
    await cli(['mesh', 'create', 'team'], env)
    const bob = new Daemon(['--name', 'bob'], env)
    cleanups.push(async () => bob.stop('SIGKILL'))
    await bob.ready()
    const mallory: MeshNode = await createMeshNode({
      home: dir,
      mesh: 'team',
      session: randomUUID(),
      name: NAME,
      role: ROLE,
      groups: [{ name: 'core', role: `lead${EVIL}` }],
      presence: { heartbeatMs: 500, ttlMs: 3_000, graceMs: 1_500 }
    })
    await mallory.start()
    cleanups.push(async () => mallory.stop())
    await mallory.setPresence({ summary: `sum${EVIL}mary`, cwd: `/tmp/${EVIL}`, host: `h${EVIL}` })
    await bob.line(/^\+ mal/, 30_000)
    const bobId = (JSON.parse((await cli(['info', '--name', 'bob', '--json'], env)).stdout) as { id: string }).id
    await mallory.mail.send(bobId, `body${EVIL}end`, { priority: 'now' })
    await bob.line(/^> mal/, 30_000)
    await mallory.data.state.set(KEY, `value${EVIL}`)
    await mallory.data.memory.remember(`zebra ${EVIL}`, [`tag${EVIL}`.slice(0, 64)])
    const sent = await cli(['send', mallory.peerId, 'hi', '--name', 'bob', '--json'], env)
    const id = (JSON.parse(sent.stdout) as Array<{ id: string }>)[0]?.id ?? ''

    // human-readable: nothing raw, and the escapes are visible
    const peers = await cli(['peers', '--name', 'bob'], env)
    clean('peers', peers.stdout)
    expect(peers.stdout.trimEnd().split('\n')).toHaveLength(3) // header, bob, mallory: one line each
    // the NAME column is the handle that addresses the peer (SPEC.md §8.6): its name with every
    // control, format and separator character removed, so nothing is left to escape
    expect(peers.stdout).toContain('mal[2J]0;pwned31mlory  ')
    const inbox = await cli(['inbox', '--name', 'bob', '--all'], env)
    clean('inbox', inbox.stdout)
    expect(inbox.stdout).toMatch(/^\S+ {2}mal\\x00\\x07\\r\\x1b\[2J.*\[now\]/m)
    expect(inbox.stdout).toContain('body\\x00\\x07\\r\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e\\u200b\\u2029\n  end')
    let recall = await cli(['recall', 'zebra', '--name', 'bob'], env)
    for (let i = 0; i < 50 && recall.stdout.startsWith('nothing'); i++) recall = await cli(['recall', 'zebra', '--name', 'bob'], env)
    clean('recall', recall.stdout)
    expect(recall.stdout).toContain('#tag\\x00\\x07\\r\\x1b[2J')
    const status = await cli(['status', id, '--name', 'bob'], env)
    clean('status', status.stdout)
    expect(status.stdout).toContain('→ mal\\x00')
    const get = await cli(['state', 'get', KEY, '--name', 'bob'], env)
    clean('state get', get.stdout)
    expect(get.stdout).toContain('value\\x00\\x07\\r\\x1b[2J')
    const list = await cli(['state', 'list', '--name', 'bob'], env)
    clean('state list', list.stdout)
    expect(list.stdout.trimEnd().split('\n')).toHaveLength(2)
    expect(list.stdout).toContain('k\\x1b[31m\\u202e\\nkey')
    const info = await cli(['info', '--name', 'bob'], env)
    clean('info', info.stdout)
    for (const l of bob.lines) clean('daemon log', l)
    const missing = await cli(['state', 'get', `${KEY}x`, '--name', 'bob'], env)
    clean('an error', missing.stderr)
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1)

    // --json: exact
    const pj = JSON.parse((await cli(['peers', '--name', 'bob', '--json'], env)).stdout) as {
      peers: Array<{ id: string; name: string; role: string; summary: string }>
    }
    expect(pj.peers.find(p => p.id === mallory.peerId)).toMatchObject({ name: NAME, role: ROLE, summary: `sum${EVIL}mary` })
    const ij = JSON.parse((await cli(['inbox', '--name', 'bob', '--all', '--json'], env)).stdout) as {
      messages: Array<{ body: string; fromName: string }>
    }
    expect(ij.messages[0]).toMatchObject({ body: `body${EVIL}end`, fromName: NAME })
    const gj = JSON.parse((await cli(['state', 'get', KEY, '--name', 'bob', '--json'], env)).stdout) as { key: string; value: string }
    expect(gj).toMatchObject({ key: KEY, value: `value${EVIL}` })
  }, 120_000)
})
