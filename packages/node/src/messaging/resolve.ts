/**
 * Addressing (SPEC.md §8.6): a target is `@all` or `*`, `@group`, a peer id, a unique prefix
 * or suffix of one (≥ 6 characters), a qualified name `name#<id fragment>`, or a display name.
 * Names are chosen by peers, ids are not: an id fragment of 10 characters or more (the short
 * form lists print) wins over any name, a shorter one that is also a name is ambiguous, and a
 * name that two known peers share (online or offline, compared folded) is ambiguous. Every
 * refusal lists the candidates with the handle that reaches each and its id.
 */
import { AmbiguousRecipientError, InvalidMessageError, UnknownRecipientError } from '../errors.js'
import { publicKeyOfPeer } from '../identity/keys.js'
import { GROUP_NAME } from '../presence/constants.js'
import type { PeerInfo } from '../presence/table.js'
import { ALL } from './groups.js'

export type Target = { kind: 'peer'; id: string; name: string } | { kind: 'group'; group: string }

/** Shortest id prefix or suffix accepted, alone or after `#`. */
export const MIN_ID_FRAGMENT = 6
/** The short id lists print (its last 10 characters): a fragment this long beats any name. */
export const SHORT_ID_LENGTH = 10
const MAX_LISTED = 8

// characters that render as nothing (or as a space): two names that differ only by them look alike
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}]/gu
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu

/** The form names are compared in: NFKC, invisible characters removed, lower case. */
export function foldName(name: string): string {
  return name.normalize('NFKC').replace(INVISIBLE, '').toLowerCase()
}

const isFragment = (id: string, t: string): boolean => t.length >= MIN_ID_FRAGMENT && (id.startsWith(t) || id.endsWith(t))

type Match =
  | { hit: PeerInfo }
  | { miss: 'self' | 'fragment' | 'none' | 'many'; candidates: PeerInfo[]; selfToo?: boolean; qualified?: boolean }

/** The known peers (never this node) as `send` sees them. */
export class PeerDirectory {
  private readonly byId = new Map<string, PeerInfo>()
  private readonly byName = new Map<string, PeerInfo[]>()
  private readonly folded = new Map<string, string>()
  // peers by the first and by the last MIN_ID_FRAGMENT characters of their id: a fragment is
  // looked for only among the peers that share its ends, not in every id
  private readonly byEnd = new Map<string, PeerInfo[]>()

  constructor(
    readonly peers: PeerInfo[],
    readonly selfId: string
  ) {
    for (const p of peers) {
      this.byId.set(p.id, p)
      for (const end of new Set([p.id.slice(0, MIN_ID_FRAGMENT), p.id.slice(-MIN_ID_FRAGMENT)])) push(this.byEnd, end, p)
      const f = foldName(p.name)
      this.folded.set(p.id, f)
      if (f !== '') push(this.byName, f, p)
    }
  }

  /** The peer a target names, or a clear error listing the candidates. */
  resolve(raw: string): PeerInfo {
    const t = raw.trim()
    const m = this.match(t)
    if ('hit' in m) return m.hit
    if (m.miss === 'self') throw new InvalidMessageError('that recipient is this session itself')
    if (m.miss === 'fragment')
      throw new InvalidMessageError(`"${shown(t)}": after "#" give at least ${MIN_ID_FRAGMENT} characters of the peer id`)
    if (m.miss === 'many') {
      const n = m.candidates.length + (m.selfToo === true ? 1 : 0)
      throw new AmbiguousRecipientError(
        `"${shown(t)}" matches ${n} peers${m.selfToo === true ? ' (this session among them)' : ''}: ${this.list(m.candidates)}; use one of these handles or a peer id`
      )
    }
    if (m.qualified === true)
      throw new UnknownRecipientError(
        `no peer "${shown(t)}" in this mesh${m.candidates.length > 0 ? `; named so: ${this.list(m.candidates)}` : ''}`
      )
    const online = this.peers.filter(p => p.online)
    throw new UnknownRecipientError(
      `no peer "${shown(t)}" in this mesh${online.length > 0 ? `; online: ${this.list(online)}` : ' (no peers online)'}`
    )
  }

  /**
   * The shortest text that `resolve` maps to this peer: its name when no other known peer
   * shares it and no id fragment shadows it, else `name#<id suffix>`, else its short id.
   */
  handle(p: PeerInfo): string {
    const name = p.name.replace(UNPRINTABLE, '').trim()
    const forms: string[] = []
    // `@…` and `*` address groups, and the CLI splits targets at commas: such names get the id
    if (foldName(name) !== '' && !/^[@*]/.test(name) && !name.includes(',')) {
      if (!name.includes('#')) forms.push(name)
      for (let k = MIN_ID_FRAGMENT; k <= SHORT_ID_LENGTH; k++) forms.push(`${name}#${p.id.slice(-k)}`)
    }
    forms.push(p.id.slice(-SHORT_ID_LENGTH))
    for (const f of forms) {
      const m = this.match(f)
      if ('hit' in m && m.hit.id === p.id) return f
    }
    return p.id
  }

  private match(t: string): Match {
    if (t === this.selfId) return { miss: 'self', candidates: [] }
    const exact = this.byId.get(t)
    if (exact != null) return { hit: exact }
    // the full id of a session key names exactly one peer even before its presence reached us
    // (a member that just joined, or records a busy relay has not gossiped yet): the DM waits
    // for it in the outbox, or in a relay's mailbox (SPEC.md §8.6)
    if (publicKeyOfPeer(t) != null) return { hit: notYetSeen(t) }
    const hash = t.lastIndexOf('#')
    if (hash >= 0) return this.qualified(t.slice(0, hash), t.slice(hash + 1))
    const byId = this.byFragment(t)
    const selfToo = isFragment(this.selfId, t)
    // a long fragment cannot be forged by choosing a name; a short one could be ground into a key
    const all =
      t.length >= SHORT_ID_LENGTH && (byId.length > 0 || selfToo)
        ? byId
        : byId.length === 0
          ? this.named(t)
          : unique([...byId, ...this.named(t)])
    if (all.length === 1 && !selfToo && all[0] != null) return { hit: all[0] }
    if (all.length === 0) return { miss: selfToo ? 'self' : 'none', candidates: [] }
    return { miss: 'many', candidates: all, selfToo }
  }

  /** `name#fragment`: a peer of that name whose id starts or ends with the fragment (`#fragment`: any name). */
  private qualified(name: string, fragment: string): Match {
    if (fragment.length < MIN_ID_FRAGMENT) return { miss: 'fragment', candidates: [] }
    const f = foldName(name)
    const hits = this.byFragment(fragment).filter(p => f === '' || this.folded.get(p.id) === f)
    if (hits.length === 1 && hits[0] != null) return { hit: hits[0] }
    return hits.length > 1 ? { miss: 'many', candidates: hits } : { miss: 'none', candidates: this.named(name), qualified: true }
  }

  private byFragment(t: string): PeerInfo[] {
    if (t.length < MIN_ID_FRAGMENT) return []
    const near = unique([...(this.byEnd.get(t.slice(0, MIN_ID_FRAGMENT)) ?? []), ...(this.byEnd.get(t.slice(-MIN_ID_FRAGMENT)) ?? [])])
    return near.filter(p => isFragment(p.id, t))
  }

  private named(t: string): PeerInfo[] {
    const f = foldName(t)
    return f === '' ? [] : (this.byName.get(f) ?? [])
  }

  private list(ps: PeerInfo[]): string {
    const shownPeers = ps.slice(0, MAX_LISTED).map(p => `${shown(this.handle(p))} (${p.id}${p.online ? '' : ', offline'})`)
    return `${shownPeers.join('; ')}${ps.length > MAX_LISTED ? `; and ${ps.length - MAX_LISTED} more` : ''}`
  }
}

function push(m: Map<string, PeerInfo[]>, key: string, p: PeerInfo): void {
  const list = m.get(key)
  if (list == null) m.set(key, [p])
  else list.push(p)
}

const unique = (ps: PeerInfo[]): PeerInfo[] => [...new Map(ps.map(p => [p.id, p])).values()]
/** A peer-chosen string inside an error line: nothing that breaks the line or hides text. */
const shown = (s: string): string => s.replace(UNPRINTABLE, '')

/** Each peer with the handle that addresses it (SPEC.md §8.6), for `peers` and `list_peers`. */
export function withHandles(peers: PeerInfo[], selfId: string, all: PeerInfo[] = peers): PeerInfo[] {
  const dir = new PeerDirectory(all, selfId)
  return peers.map(p => ({ ...p, handle: dir.handle(p) }))
}

/** The known peers, or a table that can look one id up before listing them all (presence). */
export type PeerSource = PeerInfo[] | { list: () => PeerInfo[]; get: (id: string) => PeerInfo | undefined }

export function resolveTargets(targets: string[], peers: PeerSource, selfId: string): Target[] {
  const out = new Map<string, Target>()
  // the directory is built only for a target that is not a full id the table knows (ids win
  // over names, §8.6): building one per send cost O(peers) with a locale sort, ~10 % of a
  // node's CPU in a 100-node DM burst
  let dir: PeerDirectory | undefined
  const known = (t: string): PeerInfo | undefined => (Array.isArray(peers) || t === selfId ? undefined : peers.get(t))
  for (const raw of targets) {
    const t = raw.trim()
    if (t === '') throw new InvalidMessageError('empty recipient')
    if (t === '*' || t === '@all' || t === '@*') {
      out.set(`@${ALL}`, { kind: 'group', group: ALL })
      continue
    }
    if (t.startsWith('@')) {
      const group = t.slice(1)
      if (!GROUP_NAME.test(group)) throw new InvalidMessageError(`invalid group "${shown(t)}"`)
      out.set(`@${group}`, { kind: 'group', group })
      continue
    }
    const p = known(t) ?? (dir ??= new PeerDirectory(Array.isArray(peers) ? peers : peers.list(), selfId)).resolve(t)
    out.set(p.id, { kind: 'peer', id: p.id, name: p.name })
  }
  return [...out.values()]
}

function notYetSeen(id: string): PeerInfo {
  return {
    id,
    name: '',
    role: '',
    groups: [],
    status: 'idle',
    summary: '',
    cwd: '',
    host: '',
    online: false,
    lastSeen: 0,
    incarnation: 0,
    addrs: [],
    self: false
  }
}
