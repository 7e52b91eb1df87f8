import { describe, expect, it } from 'vitest'
import { foldName, PeerDirectory, resolveTargets, withHandles } from '../src/messaging/resolve.js'
import type { PeerInfo } from '../src/presence/table.js'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A seeded generator (mulberry32), so any failure replays from its seed. */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const rand = rng(10)
const newId = (r = rand): string => `12D3KooW${Array.from({ length: 44 }, () => B58[Math.floor(r() * 58)]).join('')}`

function peer(name: string, online = true, id = newId()): PeerInfo {
  return {
    id,
    name,
    role: '',
    groups: [],
    status: 'idle',
    summary: '',
    cwd: '',
    host: '',
    online,
    lastSeen: 0,
    incarnation: 1,
    addrs: [],
    self: false
  }
}

const SELF = newId()
const one = (t: string, peers: PeerInfo[]): string => {
  const [r] = resolveTargets([t], peers, SELF)
  return r?.kind === 'peer' ? r.id : `@${r?.group}`
}

describe('resolveTargets: ids win over names (issue 10, item 9)', () => {
  it("a peer named after bob's printed short id does not receive `send <that id>`", () => {
    const bob = peer('bob')
    const mallory = peer(bob.id.slice(-10))
    expect(one(bob.id.slice(-10), [mallory, bob])).toBe(bob.id)
    expect(one(bob.id.slice(-10), [bob, mallory])).toBe(bob.id)
    // the full id and a unique longer prefix too
    const impostor = peer(bob.id)
    expect(one(bob.id, [impostor, bob])).toBe(bob.id)
    expect(one(bob.id.slice(0, 20), [impostor, bob, mallory])).toBe(bob.id)
  })

  it("a name that is also a short (6-9 character) fragment of another peer's id is refused, listing both with handle and id", () => {
    const bob = peer('bob')
    const frag = bob.id.slice(-7)
    const mallory = peer(frag)
    let err: Error | undefined
    try {
      one(frag, [mallory, bob])
    } catch (e) {
      err = e as Error
    }
    expect(err?.name).toBe('AmbiguousRecipientError')
    expect(err?.message).toContain(`(${bob.id})`)
    expect(err?.message).toContain(`(${mallory.id})`)
    expect(err?.message).toContain(`bob (${bob.id})`)
    expect(err?.message).toMatch(/use one of these handles or a peer id/)
    // the same text that is bob's name and bob's id fragment is just bob
    const solo = peer('x', true)
    const named = peer(solo.id.slice(-7))
    expect(() => one(solo.id.slice(-7), [solo, named])).toThrow(/matches 2 peers/)
    expect(one(solo.id.slice(-7), [solo])).toBe(solo.id)
  })

  it("this session's own id, short id or a name that copies it never reaches another peer", () => {
    const mallory = peer(SELF.slice(-10))
    expect(() => one(SELF, [mallory])).toThrow(/this session itself/)
    expect(() => one(SELF.slice(-10), [mallory])).toThrow(/this session itself/)
    const short = peer(SELF.slice(-7))
    expect(() => one(SELF.slice(-7), [short])).toThrow(
      expect.objectContaining({ name: 'AmbiguousRecipientError', message: expect.stringMatching(/this session among them/) })
    )
  })
})

describe('resolveTargets: names several peers share are refused, online or offline', () => {
  it('an online Bob does not receive `send bob` while the real bob is offline, nor the reverse', () => {
    const realBob = peer('bob', false)
    const impostor = peer('Bob', true)
    for (const peers of [
      [realBob, impostor],
      [impostor, realBob],
      [peer('bob', true), peer('BOB', false)]
    ]) {
      let err: Error | undefined
      try {
        one('bob', peers)
      } catch (e) {
        err = e as Error
      }
      expect(err?.name).toBe('AmbiguousRecipientError')
      for (const p of peers) expect(err?.message).toContain(`#${p.id.slice(-6)} (${p.id}${p.online ? '' : ', offline'})`)
    }
    // one bob, online or offline, is bob
    expect(one('BOB', [realBob, peer('alice')])).toBe(realBob.id)
  })

  it('names compare folded: case, width, invisible and spacing characters do not make a new name', () => {
    const bob = peer('bob')
    for (const look of ['Bo\u200Bb', 'ＢＯＢ', 'b\u00ADob', ' bob\u202E', 'bo\u034Fb', 'bob\uFE0F', 'b\u3164ob']) {
      expect(foldName(look)).toBe('bob')
      expect(() => one('bob', [bob, peer(look)])).toThrow(/matches 2 peers/)
    }
  })

  it('the qualified form name#<id fragment> picks one of them; bad fragments are clear errors', () => {
    const b1 = peer('bob', true)
    const b2 = peer('Bob', false)
    const peers = [b1, b2]
    expect(one(`bob#${b1.id.slice(-6)}`, peers)).toBe(b1.id)
    expect(one(`BOB#${b2.id.slice(-10)}`, peers)).toBe(b2.id)
    expect(one(`bob#${b2.id.slice(0, 14)}`, peers)).toBe(b2.id)
    expect(() => one(`bob#${b1.id.slice(-5)}`, peers)).toThrow(/at least 6 characters of the peer id/)
    expect(() => one(`alice#${b1.id.slice(-6)}`, peers)).toThrow(expect.objectContaining({ name: 'UnknownRecipientError' }))
    expect(() => one('bob#zzzzzzzz', peers)).toThrow(/no peer "bob#zzzzzzzz" in this mesh; named so: bob#/)
    // a peer whose name looks like another's qualified form does not capture it
    const fake = peer(`bob#${b1.id.slice(-6)}`)
    expect(one(`bob#${b1.id.slice(-6)}`, [fake, ...peers])).toBe(b1.id)
  })

  it('unknown targets list the online peers by handle and id; error text carries no control characters', () => {
    const evil = peer('eve\n\u202Eevil')
    expect(() => one('carol', [evil, peer('zed', false)])).toThrow(
      new RegExp(`^no peer "carol" in this mesh; online: eveevil \\(${evil.id}\\)$`)
    )
    expect(() => one('x\u0007y', [])).toThrow('no peer "xy" in this mesh (no peers online)')
    expect(one('@core', [])).toBe('@core')
    expect(one('*', [])).toBe('@*')
  })
})

describe('handles: unique names stay bare, shared or shadowed ones are qualified', () => {
  it('gives each peer the shortest form that resolves back to it', () => {
    const alice = peer('alice')
    const b1 = peer('bob')
    const b2 = peer('BOB', false)
    const shadowed = peer(alice.id.slice(-8))
    const hashy = peer('a#b')
    const nameless = peer('')
    const groupish = peer('@all')
    const comma = peer('a,b')
    const peers = [alice, b1, b2, shadowed, hashy, nameless, groupish, comma]
    const h = new Map(withHandles(peers, SELF).map(p => [p.id, p.handle]))
    expect(h.get(alice.id)).toBe('alice')
    expect(h.get(b1.id)).toBe(`bob#${b1.id.slice(-6)}`)
    expect(h.get(b2.id)).toBe(`BOB#${b2.id.slice(-6)}`)
    expect(h.get(shadowed.id)).toBe(`${shadowed.name}#${shadowed.id.slice(-6)}`)
    expect(h.get(hashy.id)).toBe(`a#b#${hashy.id.slice(-6)}`)
    expect(h.get(nameless.id)).toBe(nameless.id.slice(-10))
    expect(h.get(groupish.id)).toBe(groupish.id.slice(-10))
    expect(h.get(comma.id)).toBe(comma.id.slice(-10))
    // every handle, given to send, reaches its own peer
    for (const p of peers) expect(resolveTargets([h.get(p.id) ?? ''], peers, SELF)).toEqual([{ kind: 'peer', id: p.id, name: p.name }])
  })

  it('every handle resolves to its own peer, over seeded random meshes with colliding names and ids', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed)
      const names = ['bob', 'Bob', 'alice', 'b\u200Bob', '', 'x#y', '@all', '*', 'a,b', ' bob ']
      const peers: PeerInfo[] = []
      for (let i = 0; i < 30; i++) {
        const kind = r()
        const name =
          kind < 0.2 && peers.length > 0
            ? (peers[Math.floor(r() * peers.length)]?.id ?? '').slice(-(6 + Math.floor(r() * 6)))
            : (names[Math.floor(r() * names.length)] ?? '')
        peers.push(peer(name, r() < 0.5, newId(r)))
      }
      const dir = new PeerDirectory(peers, SELF)
      for (const p of withHandles(peers, SELF)) {
        expect(dir.resolve(p.handle ?? '').id, `seed ${seed}: ${p.handle}`).toBe(p.id)
        expect(resolveTargets([p.handle ?? ''], peers, SELF)[0], `seed ${seed}: ${p.handle}`).toMatchObject({ kind: 'peer', id: p.id })
      }
    }
  })

  it('computes handles for 4096 known peers quickly', () => {
    const peers = Array.from({ length: 4096 }, (_, i) => peer(i % 3 === 0 ? 'bob' : `peer-${i}`, i % 2 === 0))
    const t0 = performance.now()
    const out = withHandles(peers, SELF)
    expect(out).toHaveLength(4096)
    const ms = performance.now() - t0
    expect(ms).toBeLessThan(5_000) // a bound against quadratic blow-ups on a loaded 2-core machine, not a benchmark
    console.log(`handles for 4096 peers: ${ms.toFixed(0)} ms`)
  })
})
