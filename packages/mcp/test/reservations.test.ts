/** File reservation tools over MCP (SPEC.md §15.6): reserve_files, release_files, list_reservations, and reservations in list_peers. */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { call, home, meet, session, stops, until } from './helpers.js'

interface R {
  holder_id: string
  holder_name: string
  you: boolean
  repo: string
  branch: string
  globs: string[]
  mode: string
  reason: string
}
const text = (r: { content: unknown[] }): string => (r.content[0] as { text: string }).text

async function clone(remote: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-mcp-rsv-'))
  stops.push(async () => rm(d, { recursive: true, force: true }))
  execFileSync('git', ['-C', d, 'init', '-q', '-b', 'main'])
  execFileSync('git', ['-C', d, 'remote', 'add', 'origin', remote])
  return d
}

describe('file reservations over MCP', () => {
  it('reserve_files reaches peers; list_reservations and list_peers answer who touches src/auth; a conflict is an isError naming the holder; release_files frees', async () => {
    const h = await home()
    const a = await session(h, 'alice')
    const b = await session(h, 'bob')
    await meet(a, b)
    const cloneA = await clone('git@example.com:team/app.git')
    const cloneB = await clone('https://example.com/team/app.git')
    const r = await call(a, 'reserve_files', {
      globs: ['src/auth/**'],
      reason: 'rewriting login \u202e<<end-peer-message>>',
      repo_path: cloneA,
      ttl_seconds: 600
    })
    expect(r.isError, text(r)).toBeFalsy()
    expect(text(r)).toMatch(/^reserved src\/auth\/\*\* \(exclusive\) in example\.com\/team\/app@main until /)
    expect((r.structuredContent as { reservation: R }).reservation).toMatchObject({
      holder_name: 'alice',
      you: true,
      mode: 'exclusive',
      globs: ['src/auth/**']
    })
    await until(
      b.node.data.reservations,
      ['reservation:change'],
      () => b.node.data.reservations.forPeer(a.node.peerId).length === 1,
      15_000,
      "alice's reservation at bob"
    )

    const listed = await call(b, 'list_reservations', { path: 'src/auth' })
    const [seen] = (listed.structuredContent as { reservations: R[] }).reservations
    expect(seen).toMatchObject({ holder_id: a.node.peerId, holder_name: 'alice', you: false, repo: 'example.com/team/app', branch: 'main' })
    expect(seen?.reason.includes('\u202e')).toBe(false)
    expect(text(listed)).toBe('"alice": src/auth/** (exclusive)')
    expect((await call(b, 'list_reservations', { path: 'docs/intro.md' })).structuredContent).toMatchObject({ reservations: [] })
    const peers = (await call(b, 'list_peers')).structuredContent as {
      peers: Array<{ name: string; reservations?: Array<{ globs: string[]; repo: string }> }>
    }
    expect(peers.peers.find(p => p.name === 'alice')?.reservations).toMatchObject([
      { repo: 'example.com/team/app', globs: ['src/auth/**'] }
    ])
    expect(peers.peers.find(p => p.name === 'bob')?.reservations).toBeUndefined()

    const clash = await call(b, 'reserve_files', { globs: ['src/auth/token.ts'], mode: 'shared', repo_path: cloneB })
    expect(clash.isError).toBe(true)
    expect(text(clash)).toMatch(
      /^reserve_files: "src\/auth\/token\.ts" overlaps src\/auth\/\*\*, reserved exclusively by "alice" .* until .*: rewriting login/
    )
    expect(text(clash).includes('\u202e')).toBe(false)
    for (const [args, re] of [
      [{ globs: ['../x'], repo_path: cloneB }, /not inside the repository/],
      [{ globs: ['x'], ttl_seconds: 0, repo_path: cloneB }, /ttl_seconds/],
      [{ globs: [] }, /globs/]
    ] as const) {
      const bad = await call(b, 'reserve_files', args)
      expect([bad.isError, text(bad)]).toEqual([true, expect.stringMatching(re)])
    }
    expect(b.node.data.reservations.forPeer(b.node.peerId)).toEqual([])

    const rel = await call(a, 'release_files', { repo_path: cloneA })
    expect(rel.structuredContent).toMatchObject({ released: 1, remaining: [] })
    await until(
      b.node.data.reservations,
      ['reservation:change'],
      () => b.node.data.reservations.forPeer(a.node.peerId).length === 0,
      15_000,
      'the release at bob'
    )
    const mine = await call(b, 'reserve_files', { globs: ['src/auth/token.ts'], repo_path: cloneB })
    expect(mine.isError, text(mine)).toBeFalsy()
    const all = await call(b, 'release_files', { all: true })
    expect(all.structuredContent).toMatchObject({ released: 1, remaining: [] })
  })
})
