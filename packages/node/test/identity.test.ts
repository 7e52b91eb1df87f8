import { randomUUID } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createInvite, createMesh, joinMesh, listMeshes, loadMesh, loadOrCreateSessionKey, paths, verifyInvite } from '../src/index.js'
import { tempHome } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map(async c => c()))
})
async function home(): Promise<string> {
  const t = await tempHome()
  cleanups.push(t.cleanup)
  return t.home
}

describe('meshes', () => {
  it('creates, lists and reloads a mesh with 0600 file in a 0700 dir', async () => {
    const h = await home()
    const m = await createMesh(h, 'team')
    expect((await loadMesh(h, 'team')).id).toBe(m.id)
    expect((await listMeshes(h)).map(x => x.name)).toEqual(['team'])
    expect((await stat(paths.mesh(h, 'team'))).mode & 0o777).toBe(0o600)
    expect((await stat(dirname(paths.mesh(h, 'team')))).mode & 0o777).toBe(0o700)
    await expect(createMesh(h, 'team')).rejects.toThrow(/already exists/)
  })

  it('refuses names that could escape the home', async () => {
    const h = await home()
    for (const bad of ['../x', 'a/b', '', '.hidden', '-x', 'a..b', 'x'.repeat(65)]) {
      await expect(createMesh(h, bad)).rejects.toHaveProperty('name', 'InvalidNameError')
    }
    await expect(loadMesh(h, 'missing')).rejects.toThrow(/no mesh "missing"/)
  })
})

describe('session keys', () => {
  it('are created once per (mesh, session), 0600, and reused', async () => {
    const h = await home()
    const s = randomUUID()
    const a = await loadOrCreateSessionKey(h, 'team', s)
    const b = await loadOrCreateSessionKey(h, 'team', s)
    expect(a.created).toBe(true)
    expect(b.created).toBe(false)
    expect(b.peerId.toString()).toBe(a.peerId.toString())
    const file = paths.sessionKey(h, 'team', s)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700)
    const other = await loadOrCreateSessionKey(h, 'other', s)
    expect(other.peerId.toString()).not.toBe(a.peerId.toString())
  })

  it('two racing creators agree on one key', async () => {
    const h = await home()
    const s = randomUUID()
    const keys = await Promise.all(Array.from({ length: 8 }, async () => loadOrCreateSessionKey(h, 'team', s)))
    expect(new Set(keys.map(k => k.peerId.toString())).size).toBe(1)
    expect(keys.filter(k => k.created).length).toBe(1)
  })

  it('refuses a non-UUID session id and a corrupt key file', async () => {
    const h = await home()
    await expect(loadOrCreateSessionKey(h, 'team', '../../etc/passwd')).rejects.toHaveProperty('name', 'InvalidNameError')
    const s = randomUUID()
    await loadOrCreateSessionKey(h, 'team', s)
    await writeFile(paths.sessionKey(h, 'team', s), '{"v":1,')
    await expect(loadOrCreateSessionKey(h, 'team', s)).rejects.toThrow(/not valid JSON/)
  })
})

describe('invites', () => {
  it('carry what a member needs and join a second home', async () => {
    const a = await home()
    const b = await home()
    const m = await createMesh(a, 'team', { bootstrap: ['/ip4/127.0.0.1/tcp/4001'] })
    const token = await createInvite(m, { bootstrap: ['/ip4/127.0.0.1/tcp/4002'] })
    expect(token).toMatch(/^cm1\.[A-Za-z0-9_-]+$/)
    const joined = await joinMesh(b, token)
    expect(joined.id).toBe(m.id)
    expect(joined.ownerKey).toBeUndefined()
    expect(Buffer.from(joined.contentSecret ?? []).equals(Buffer.from(m.contentSecret ?? []))).toBe(true)
    expect(joined.bootstrap).toEqual(['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002'])
    await expect(createInvite(joined)).rejects.toThrow(/only the owner/)
  })

  it('a relay invite holds no content secret', async () => {
    const m = await createMesh(await home(), 'team')
    const p = await verifyInvite(await createInvite(m, { relay: true }))
    expect(p.content).toBeUndefined()
    expect(p.net.byteLength).toBe(32)
  })

  it('a relay invite is refused by join with a pointer to relay --invite, writing nothing; lifetimes are bounded to 365 days', async () => {
    const m = await createMesh(await home(), 'team')
    const b = await home()
    await expect(joinMesh(b, await createInvite(m, { relay: true }))).rejects.toThrow(
      /this is a relay invite for mesh "team": run `claudemesh relay --invite <token>` on the relay host/
    )
    expect(await listMeshes(b)).toEqual([])
    for (const ttl of [365 * 86_400_000 + 1, 99999999999 * 604_800_000, 0, -1, Number.NaN]) {
      await expect(createInvite(m, { ttl })).rejects.toThrow(/an invite lasts from 1 ms to 365 days/)
    }
    const p = await verifyInvite(await createInvite(m, { ttl: 365 * 86_400_000 }))
    expect(p.exp - p.iat).toBeGreaterThanOrEqual(365 * 86_400 - 1)
  })

  it('refuses tampered, truncated, extended, expired and foreign invites', async () => {
    const m = await createMesh(await home(), 'team')
    const token = await createInvite(m, { ttl: 60_000 })
    const raw = Buffer.from(token.slice(4), 'base64url')
    for (let i = 10; i < raw.length; i += 37) {
      const t = Buffer.from(raw)
      t[i] = (t[i] ?? 0) ^ 0x01
      await expect(verifyInvite(`cm1.${t.toString('base64url')}`)).rejects.toHaveProperty('name', 'InvalidInviteError')
    }
    await expect(verifyInvite(token.slice(0, -10))).rejects.toHaveProperty('name', 'InvalidInviteError')
    await expect(verifyInvite(`${token}AAAA`)).rejects.toHaveProperty('name', 'InvalidInviteError')
    await expect(verifyInvite('hello')).rejects.toThrow(/not a claudemesh invite/)
    await expect(verifyInvite(token, Date.now() + 61_000)).rejects.toHaveProperty('name', 'ExpiredInviteError')
    // a different mesh that happens to share the name
    const b = await home()
    await createMesh(b, 'team')
    await expect(joinMesh(b, token)).rejects.toThrow(/different mesh named "team"/)
    // the joiner's home is untouched by a refused join
    expect((await loadMesh(b, 'team')).id).not.toBe(m.id)
  })

  it('a re-signed payload with another owner key is refused by members of the real mesh', async () => {
    const h = await home()
    const real = await createMesh(h, 'team')
    const member = await home()
    await joinMesh(member, await createInvite(real))
    const fake = await createMesh(await home(), 'team')
    await expect(joinMesh(member, await createInvite({ ...fake, id: real.id }))).rejects.toThrow(/different mesh/)
    expect(JSON.parse(await readFile(paths.mesh(member, 'team'), 'utf8')).owner).toBe(Buffer.from(real.owner).toString('base64url'))
  })
})
