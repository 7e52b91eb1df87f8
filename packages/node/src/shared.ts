/** Assemble shared state, memory, tasks, context hand-offs and file reservations for a node: log, replica, sync (SPEC.md §11, §14, §15, §17). */
import { SharedContext } from './context/index.js'
import type { Ed25519PrivateKey } from './identity/keys.js'
import { SharedMemory } from './memory/index.js'
import { fileIndexStore } from './memory/index-snapshot.js'
import { ReservationBoard } from './reservations/board.js'
import type { GroupCommit } from './store/commit.js'
import { type Store, sublevel } from './store/index.js'
import type { MeshLibp2p } from './transport/index.js'
import { updateKey } from './state/envelope.js'
import { LevelLog } from './state/log.js'
import { Replica } from './state/replica.js'
import { SharedState } from './state/state.js'
import { CrdtSync } from './state/sync.js'
import { SETTLE_MS, TaskBoard, type TaskBoardOptions } from './tasks/index.js'

export interface Shared {
  replica: Replica
  sync: CrdtSync
  state: SharedState
  memory: SharedMemory
  tasks: TaskBoard
  context: SharedContext
  reservations: ReservationBoard
}
export interface SharedInit {
  meshId: string
  privateKey: Ed25519PrivateKey
  contentSecret: Uint8Array
  incarnation: number
  selfId: string
}

/** Load the replica and wire state and memory to it; `sync` is not started yet. */
export async function createShared(
  parts: { libp2p: MeshLibp2p; store: Store; commit: GroupCommit; snapshots: string },
  init: SharedInit,
  tasks: TaskBoardOptions = {}
): Promise<Shared> {
  const crdt = sublevel(parts.store, 'crdt')
  // the snapshots are files in `parts.snapshots`, beside the store (SPEC.md §11.3)
  const log = new LevelLog(crdt, parts.commit, parts.snapshots)
  await log.open()
  const replica = new Replica(init.meshId, init.privateKey, updateKey(init.contentSecret, init.meshId), init.incarnation, log, init.selfId)
  // the recall index snapshot is read while the replica loads (SPEC.md §11.6); its errors are the memory's to report
  const indexStore = fileIndexStore(parts.snapshots, crdt)
  const preloaded = indexStore.load()
  preloaded.catch(() => {})
  await replica.load()
  const sync = new CrdtSync(parts.libp2p, replica, init.meshId)
  const publish = (env: Uint8Array): void => {
    sync.publish(env)
  }
  const board = new TaskBoard(replica, publish, { settle: async () => sync.pullAll(SETTLE_MS), ...tasks })
  return {
    replica,
    sync,
    state: new SharedState(replica, publish),
    memory: new SharedMemory(replica, publish, { indexStore, preloaded }),
    tasks: board,
    context: new SharedContext(replica, publish),
    reservations: new ReservationBoard(replica, publish, { offline: tasks.offline })
  }
}
