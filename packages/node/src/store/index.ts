/**
 * The node's LevelDB: one database per session under `$CLAUDEMESH_HOME/data/<mesh>/<uuid>`.
 * Keys are strings in sublevels (`presence`, later `outbox`, `inbox`, `docs`…); values are
 * bytes. `meta!version` names the key layout; `openStore` migrates older layouts step by step
 * before anyone reads, so a layout change never meets data it does not understand.
 */
import type { AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import { StoreVersionError } from '../errors.js'
import { ensureDir } from '../home.js'

export type Store = Level<string, Uint8Array>

/** A named section of the store with string keys and byte values. */
export type Sublevel = AbstractSublevel<Store, string | Uint8Array, string, Uint8Array>
export function sublevel(db: Store, name: string): Sublevel {
  return db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' })
}

/**
 * A database's key layout: its version, and a step from each older version to the next, run
 * in order inside `openStore` before anyone reads. Each owner (a session, a relay) passes its
 * own, so the store knows nothing of what is kept in it.
 */
export interface Layout {
  version: number
  migrations: Record<number, (db: Store) => Promise<void>>
}

export class StoreLockedError extends Error {
  constructor(dir: string) {
    super(`the store ${dir} is in use by another process (is this session already running?)`)
    this.name = 'StoreLockedError'
  }
}

export interface OpenStoreOptions {
  /** keep retrying a locked database this long (another incarnation is shutting down) */
  lockWaitMs?: number
  signal?: AbortSignal
  /**
   * Called while the lock is held by someone else, at most every `onLockedEveryMs` (500):
   * the holder may be a process to tell to go (a courier, SPEC.md §8.7).
   */
  onLocked?: () => Promise<void>
}

export async function openStore(dir: string, layout: Layout, opts: OpenStoreOptions = {}): Promise<Store> {
  await ensureDir(dir)
  const deadline = Date.now() + (opts.lockWaitMs ?? 0)
  let nudged = 0
  for (let attempt = 0; ; attempt++) {
    const db: Store = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    try {
      await db.open()
      await migrate(db, layout)
      return db
    } catch (err) {
      const locked = (err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED'
      if (!locked) throw err
      if (Date.now() >= deadline || opts.signal?.aborted === true) throw new StoreLockedError(dir)
      if (opts.onLocked != null && Date.now() - nudged >= 500) {
        nudged = Date.now()
        await opts.onLocked().catch(() => {})
      }
      // the lock is a file lock: nothing to subscribe to, so poll with a short backoff
      await new Promise(resolve => setTimeout(resolve, Math.min(20 * 2 ** attempt, 200)))
    }
  }
}

async function migrate(db: Store, layout: Layout): Promise<void> {
  const raw = (await db.get('meta!version', { valueEncoding: 'utf8' })) as unknown as string | undefined
  let version = raw == null ? 0 : Number(raw)
  if (!Number.isInteger(version) || version > layout.version) {
    throw new StoreVersionError(
      `store layout version ${String(raw)} is newer than this claudemesh understands (${layout.version}); upgrade claudemesh`
    )
  }
  while (version < layout.version) {
    const step = layout.migrations[version]
    if (step == null) throw new StoreVersionError(`no migration from store layout ${version}`)
    await step(db)
    version++
    await db.put('meta!version', String(version) as unknown as Uint8Array, { valueEncoding: 'utf8', sync: true })
  }
}

/**
 * Write LevelDB's memtable out to a table, so the next open has no log to replay. A clean stop
 * calls it after saving the snapshots. When they were in LevelDB, replaying a log that held
 * them kept ~85 MB more RSS after start-up at 100k notes; now that they are files the log holds
 * at most LevelDB's 4 MiB write buffer of other writes (measured: a 2 MB log cost ~2.4 MB RSS
 * and no start time beyond the noise). The range holds no key of ours: only the memtable is
 * written, no table is compacted.
 */
export async function flushWrites(db: Store): Promise<void> {
  const classic = db as unknown as { compactRange?: (start: string, end: string) => Promise<void> }
  await classic.compactRange?.('\u007f', '\u007f')
}
