/** File reservation rules (SPEC.md §15): repository identity, globs, the conflict and blocking rules on in-memory replicas, hostile entries. */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as Y from 'yjs'
import { afterAll, describe, expect, it } from 'vitest'
import type { Ed25519PrivateKey } from '../src/index.js'
import { covers, globProblem, normalizeRemote, overlaps, type RepoRef, repoOf, ReservationBoard } from '../src/reservations/index.js'
import { clientIdOf, MemoryLog, Replica, signUpdate } from '../src/state/index.js'

const MESH = '00112233aabbccdd'
const SEAL = new Uint8Array(32).fill(9)
const dirs: string[] = []
afterAll(async () => {
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
})

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', ['-C', cwd, ...args], { stdio: 'ignore' })
}

async function clone(remote: string, branch = 'main'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-rs-'))
  dirs.push(d)
  git(d, 'init', '-q', '-b', branch)
  git(d, 'remote', 'add', 'origin', remote)
  return d
}

describe('repository identity', () => {
  it('ssh, https with credentials, ports, .git and case all name one repository', () => {
    const forms = [
      'git@GitHub.com:Team/App.git',
      'https://bob:s3cret@github.com/team/app',
      'ssh://git@github.com:22/team/app.git/',
      'git://github.com/team/app',
      'git+ssh://git@github.com/team/app.git'
    ]
    expect(new Set(forms.map(f => normalizeRemote(f, 'h', '/r')))).toEqual(new Set(['github.com/team/app']))
    expect(normalizeRemote('/srv/git/app.git', 'Box', '/r')).toBe('file://box/srv/git/app')
    expect(normalizeRemote('../app.git', 'box', '/home/u/r')).toBe('file://box/home/u/app')
    expect(normalizeRemote('file:///srv/git/app.git', 'box', '/r')).toBe('file://box/srv/git/app')
  })

  it('two clones with different remote spellings match, for a file that does not exist yet; a plain directory is its own path', async () => {
    const a = await clone('git@example.com:team/app.git')
    const b = await clone('https://u:p@example.com/team/app')
    const ra = await repoOf(join(a, 'src', 'new', 'dir'))
    const rb = await repoOf(b)
    expect(ra).toMatchObject({ repo: 'example.com/team/app', branch: 'main', root: a, git: true })
    expect(rb).toMatchObject({ repo: 'example.com/team/app', branch: 'main', root: b })
    const other = await clone('git@example.com:team/app.git', 'feature')
    expect((await repoOf(other)).branch).toBe('feature')
    const plain = await mkdtemp(join(tmpdir(), 'cm-rs-plain-'))
    dirs.push(plain)
    expect(await repoOf(plain)).toEqual({ repo: `file://${hostname().toLowerCase()}${plain}`, branch: '', root: plain, git: false })
    const local = await clone('')
    git(local, 'remote', 'remove', 'origin')
    expect((await repoOf(local)).repo).toBe(`file://${hostname().toLowerCase()}${local}`)
  })
})

describe('globs', () => {
  it('a literal covers itself and what is below it; patterns match with dotfiles; overlap is exact against a literal and conservative between patterns', () => {
    expect([
      covers('src/auth', 'src/auth/login.ts'),
      covers('src/auth', 'src/authz.ts'),
      covers('src/**', 'src/.env'),
      covers('*.md', 'docs/a.md')
    ]).toEqual([true, false, true, false])
    expect(overlaps('src/auth/**', 'src/auth/login.ts')).toBe(true)
    expect(overlaps('src/auth', 'src/auth/*.ts')).toBe(true)
    expect(overlaps('src/**', 'docs/*.md')).toBe(false)
    expect(overlaps('src/a.ts', 'src/b.ts')).toBe(false)
    expect(overlaps('src/*.ts', 'src/*.md')).toBe(true) // conservative: same base directory
    expect(overlaps('**/*.ts', 'docs/x')).toBe(true)
  })

  it('stay fast on any path: globs that would backtrack for minutes are refused, the worst allowed one matches a 4 KiB path quickly', () => {
    expect(globProblem('*a*a*a*a*a*a*a*a')).toMatch(/at most 2 "\*" in one path segment/)
    expect(globProblem('+(a|aa)*')).toMatch(/"\(", "\)" or "\|"/)
    expect(globProblem('f{1..100000}')).toMatch(/without "\.\."/)
    expect(globProblem('src/**/*.test.*')).toBeUndefined()
    const path = `${`${'a'.repeat(255)}/`.repeat(15)}${'a'.repeat(255)}`
    const t0 = performance.now()
    for (const g of ['**/*a*a*Z', '**/*a*a*Z/**/*a*a*Z', '{*a,*b}/**/*a*Z']) expect(covers(g, path)).toBe(false)
    expect(performance.now() - t0).toBeLessThan(2_000)
  })
})

async function member(
  clock: { now: number },
  offline: Set<string> = new Set()
): Promise<{ id: string; replica: Replica; board: ReservationBoard; key: Ed25519PrivateKey }> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const replica = new Replica(MESH, key, SEAL, 1, new MemoryLog(), id)
  return { id, replica, key, board: new ReservationBoard(replica, () => {}, { now: () => clock.now, offline: p => offline.has(p) }) }
}

async function sync(from: Replica, to: Replica): Promise<void> {
  for (const env of await from.missing(to.versionVector())) await to.ingest(env)
}

const HERE: RepoRef = { repo: 'example.com/team/app', branch: 'main', root: '/work/a', git: true }
const THERE: RepoRef = { ...HERE, root: '/home/b/app' }

describe('reservation rules', () => {
  it('exclusive conflicts with any overlap, shared with shared does not; the check names the holder and reason; release frees', async () => {
    const clock = { now: 1_000_000 }
    const a = await member(clock)
    const b = await member(clock)
    await a.board.reserve(HERE, { globs: ['src/auth/**'], reason: 'rewriting login', ttlMs: 60_000 }, 'alice')
    await sync(a.replica, b.replica)
    await expect(b.board.reserve(THERE, { globs: ['src/auth/login.ts'], mode: 'shared' }, 'bob')).rejects.toThrow(
      /reserved exclusively by "alice".*rewriting login/
    )
    expect(b.board.blockers(THERE, '/home/b/app/src/auth/login.ts', b.id).map(r => [r.holder, r.reason])).toEqual([
      [a.id, 'rewriting login']
    ])
    expect(b.board.blockers(THERE, '/home/b/app/src/main.ts', b.id)).toEqual([])
    expect(b.board.blockers({ ...THERE, branch: 'feature' }, '/home/b/app/src/auth/login.ts', b.id)).toEqual([])
    expect(a.board.blockers(HERE, '/work/a/src/auth/login.ts', a.id)).toEqual([])
    await b.board.reserve(THERE, { globs: ['docs/**'], mode: 'shared' }, 'bob')
    await a.board.reserve(HERE, { globs: ['docs/api.md'], mode: 'shared' }, 'alice')
    await sync(b.replica, a.replica)
    await expect(a.board.reserve(HERE, { globs: ['docs/**'] }, 'alice')).rejects.toThrow(/reserved by "bob"/)
    expect(await a.board.release(HERE, ['src/auth/**'], 'alice')).toBe(1)
    await sync(a.replica, b.replica)
    expect(b.board.blockers(THERE, '/home/b/app/src/auth/login.ts', b.id)).toEqual([])
    expect(a.board.forPeer(a.id).map(r => r.globs)).toEqual([['docs/api.md']])
  })

  it("an ended reservation or an offline holder's no longer counts", async () => {
    const clock = { now: 5_000_000 }
    const offline = new Set<string>()
    const a = await member(clock)
    const b = await member(clock, offline)
    await a.board.reserve(HERE, { globs: ['src/**'], ttlMs: 10_000 }, 'alice')
    await sync(a.replica, b.replica)
    expect(b.board.blockers(THERE, '/home/b/app/src/x.ts', b.id)).toHaveLength(1)
    offline.add(a.id)
    expect(b.board.blockers(THERE, '/home/b/app/src/x.ts', b.id)).toEqual([])
    expect(b.board.live()).toEqual([])
    offline.delete(a.id)
    clock.now += 10_000
    expect(b.board.blockers(THERE, '/home/b/app/src/x.ts', b.id)).toEqual([])
    await b.board.reserve(THERE, { globs: ['src/**'] }, 'bob')
  })

  it('two exclusive reservations made concurrently: the earlier stands on both sides, the later holder is the one blocked', async () => {
    const clock = { now: 9_000_000 }
    const a = await member(clock)
    const b = await member(clock)
    await b.board.reserve(THERE, { globs: ['src/db/**'], reason: 'b first' }, 'bob')
    clock.now += 5
    await a.board.reserve(HERE, { globs: ['src/db/schema.ts'], reason: 'a second' }, 'alice')
    await sync(a.replica, b.replica)
    await sync(b.replica, a.replica)
    expect(a.board.blockers(HERE, '/work/a/src/db/schema.ts', a.id).map(r => r.reason)).toEqual(['b first'])
    expect(b.board.blockers(THERE, '/home/b/app/src/db/schema.ts', b.id)).toEqual([])
    // a committer who is neither (viewer none) is stopped by both
    expect(b.board.blockers(THERE, '/home/b/app/src/db/schema.ts', null)).toHaveLength(2)
  })

  it('bad input is refused with a clear error and writes nothing', async () => {
    const a = await member({ now: 1 })
    const cases: Array<[string[], RegExp, number?]> = [
      [['/etc/passwd'], /not inside the repository/],
      [['src/../../x'], /not inside the repository/],
      [['x'.repeat(257)], /1 to 256 characters/],
      [Array.from({ length: 33 }, (_, i) => `f${i}`), /1 to 32 globs/],
      [['a\u202eb'], /control or invisible/],
      [['src/**'], /1 s to 24 h/, 10]
    ]
    for (const [globs, re, ttlMs] of cases) await expect(a.board.reserve(HERE, { globs, ttlMs }, 'a')).rejects.toThrow(re)
    await expect(a.board.reserve(HERE, { globs: ['x'], reason: 'r'.repeat(513) }, 'a')).rejects.toThrow(/at most 512/)
    expect(a.replica.doc.getMap('reservations').size).toBe(0)
  })
})

describe('hostile reservation entries', () => {
  it('are refused and counted, never applied', async () => {
    const clock = { now: 1_000 }
    const a = await member(clock)
    const m = await member(clock)
    const craft = (inc: number, fn: (map: Y.Map<unknown>) => void): Uint8Array => {
      const d = new Y.Doc()
      d.clientID = clientIdOf(m.key.publicKey.raw, inc)
      let u: Uint8Array = new Uint8Array()
      d.on('update', (x: Uint8Array) => {
        u = x
      })
      d.transact(() => {
        fn(d.getMap('reservations'))
      })
      return u
    }
    const item = { repo: HERE.repo, branch: 'main', globs: ['src/**'], mode: 'exclusive', reason: 'mine now', since: 1, exp: 9e12 }
    const entry = { list: [item], name: 'mallory', by: m.id, at: 1 }
    const cases: Array<[string, (map: Y.Map<unknown>) => void]> = [
      [
        "an entry under another member's id",
        map => {
          map.set(a.id, { ...entry })
        }
      ],
      [
        'an extra field',
        map => {
          map.set(m.id, { ...entry, admin: true })
        }
      ],
      [
        'a bad mode',
        map => {
          map.set(m.id, { ...entry, list: [{ ...item, mode: 'owner' }] })
        }
      ],
      [
        'too many globs',
        map => {
          map.set(m.id, { ...entry, list: [{ ...item, globs: Array.from({ length: 33 }, (_, i) => `g${i}`) }] })
        }
      ],
      [
        'a glob too long',
        map => {
          map.set(m.id, { ...entry, list: [{ ...item, globs: ['g'.repeat(257)] }] })
        }
      ],
      [
        'too many reservations',
        map => {
          map.set(m.id, { ...entry, list: Array.from({ length: 33 }, () => item) })
        }
      ],
      [
        'a glob made to backtrack for minutes',
        map => {
          map.set(m.id, { ...entry, list: [{ ...item, globs: ['*a*a*a*a*a*a*a*a'] }] })
        }
      ]
    ]
    const reasons: string[] = []
    a.replica.addEventListener('crdt:reject', evt => {
      reasons.push(evt.detail.reason)
    })
    let inc = 10
    for (const [what, fn] of cases)
      expect(await a.replica.ingest(await signUpdate(MESH, m.key, SEAL, inc, 1, craft(inc++, fn))), what).toBe('rejected')
    expect(a.replica.stats.rejected).toBe(cases.length)
    expect(reasons.join('\n')).toMatch(/another member's id/)
    expect(a.board.live()).toEqual([])
    await a.board.reserve(HERE, { globs: ['src/**'] }, 'alice')
  })
})
