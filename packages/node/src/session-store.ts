/**
 * Opening a session's store (SPEC.md §6.4, §8.7). One process at a time holds it (LevelDB's
 * lock). A session first tells older incarnations on this machine to go, then waits for the
 * lock, telling again whoever shows up holding it meanwhile (a courier that started while
 * the session waited). A courier waits longer, for the session that spawned it to finish
 * stopping, and gives up as soon as a newer incarnation (or another courier) runs.
 */
import { listRunning } from './discovery/registry.js'
import { SupersededError } from './errors.js'
import { paths } from './home.js'
import type { SessionKey } from './identity/session-key.js'
import { replaceOlderIncarnations } from './presence/replace.js'
import { migrateInbox1to2 } from './messaging/inbox.js'
import { type Layout, openStore, type Store, sublevel } from './store/index.js'

/** How long a session waits for an older incarnation or a courier to release the store. */
export const SESSION_LOCK_WAIT_MS = 10_000
/** How long a courier waits for its stopping session to release the store. */
export const COURIER_LOCK_WAIT_MS = 60_000

export interface SessionStoreInit {
  home: string
  mesh: { name: string; id: string }
  key: SessionKey
  incarnation: number
  courier: boolean
}

/** The key layout of a session's store (SPEC.md §8.4), and the steps from older ones. */
export const SESSION_LAYOUT: Layout = {
  version: 2,
  migrations: {
    // 0 → 1: a new database; nothing to move.
    0: async () => {},
    // 1 → 2: inbox records keyed by arrival time
    1: async db => {
      await db.batch(await migrateInbox1to2(sublevel(db, 'inbox')), { sync: true })
    }
  }
}

export async function openSessionStore(init: SessionStoreInit): Promise<Store> {
  const { home, mesh, key, incarnation } = init
  const dir = paths.data(home, mesh.name, key.session)
  const peerId = key.peerId.toString()
  if (!init.courier) {
    const replace = async (): Promise<void> => replaceOlderIncarnations(home, mesh, key.privateKey, peerId, incarnation)
    await replace()
    return openStore(dir, SESSION_LAYOUT, { lockWaitMs: SESSION_LOCK_WAIT_MS, onLocked: replace })
  }
  const superseded = new AbortController()
  const check = async (): Promise<void> => {
    if (await supersedes(home, mesh.name, peerId, incarnation)) superseded.abort()
  }
  const gone = (): SupersededError =>
    new SupersededError(`a newer incarnation of session ${key.session} is running and carries its own messages`)
  await check()
  if (superseded.signal.aborted) throw gone()
  try {
    return await openStore(dir, SESSION_LAYOUT, { lockWaitMs: COURIER_LOCK_WAIT_MS, onLocked: check, signal: superseded.signal })
  } catch (err) {
    throw superseded.signal.aborted ? gone() : err
  }
}

/** A courier for incarnation `inc` is not needed: a newer incarnation runs, or another courier. */
async function supersedes(home: string, mesh: string, peerId: string, inc: number): Promise<boolean> {
  return (await listRunning(home, mesh)).some(
    e => e.peerId === peerId && (e.incarnation > inc || (e.kind === 'courier' && e.pid !== process.pid))
  )
}
