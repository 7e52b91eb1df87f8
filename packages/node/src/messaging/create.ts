/** Assemble and start the messaging layer of a node from its parts (SPEC.md §8–§9). */
import type { Dialer } from '../discovery/dialer.js'
import type { Ed25519PrivateKey } from '../identity/keys.js'
import type { Presence } from '../presence/presence.js'
import type { GroupCommit } from '../store/commit.js'
import { type Store, sublevel } from '../store/index.js'
import type { MeshLibp2p } from '../transport/index.js'
import { DirectMessages } from './dm.js'
import { Groups } from './groups.js'
import { Inbox } from './inbox.js'
import { Messaging } from './index.js'
import { Outbox } from './outbox.js'
import type { FloodGuard } from './flood.js'

export interface MessagingParts {
  libp2p: MeshLibp2p
  presence: Presence
  dialer: Dialer
  store: Store
  commit: GroupCommit
  guard: FloodGuard
}
export interface MessagingInit {
  meshId: string
  privateKey: Ed25519PrivateKey
  contentSecret: Uint8Array
  ttlMs?: number
  groups: string[]
  relays?: string[]
  /** the same-home DM socket (SPEC.md §8.9) */
  local?: { runDir: string; listen: boolean }
}

export async function createMessaging(parts: MessagingParts, init: MessagingInit): Promise<Messaging> {
  const { libp2p, presence, dialer, store, commit, guard } = parts
  const inbox = new Inbox(sublevel(store, 'inbox'), commit)
  const outbox = new Outbox(sublevel(store, 'outbox'), commit)
  await inbox.start()
  await outbox.start()
  guard.unread = inbox.counts
  const keys = { meshId: init.meshId, privateKey: init.privateKey, contentSecret: init.contentSecret }
  const dm = new DirectMessages(
    { libp2p, presence, dialer, inbox, outbox, guard },
    { ...keys, ttlMs: init.ttlMs, relays: init.relays, local: init.local }
  )
  const groups = new Groups({ libp2p, presence, inbox, history: sublevel(store, 'groups'), guard }, keys)
  const messaging = new Messaging(dm, groups, inbox, outbox, presence, guard)
  await dm.start()
  await groups.start(init.groups)
  return messaging
}
