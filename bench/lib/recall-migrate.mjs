// Probing (not run by scripts/bench.mjs): a recall store an older build prepared, its snapshots
// in LevelDB (`CLAUDEMESH_BENCH_NODE_DIST=<old dist> BENCH_RECALL_DIR=<dir> node --expose-gc
// bench/lib/recall-engine.mjs '{"size":100000,"queries":20,"warmup":2}'`), opened by this build
// on a copy: `node bench/lib/recall-migrate.mjs <dir> [change]`. It loads the replica and the
// index from the old keys, saves both as a clean stop does (after one new note with `change`),
// opens again and reports where each came from, the keys and files left, and whether the
// document and a few recalls are the same. One JSON line on stdout.
import { cpSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { removeDir, tempDir } from './harness.mjs'
import { loadPure, MESH_ID, SEAL_KEY } from './state-common.mjs'

const lib = await loadPure()
const root = tempDir('recall-migrate-')
cpSync(process.argv[2], join(root, 'db'), { recursive: true })
const dir = join(root, 'db')
const key = await lib.keyFromSeed(1)
const id = lib.peerIdStringOfRaw(key.publicKey.raw)
async function open() {
  const db = await lib.openStore(dir)
  const crdt = lib.sublevel(db, 'crdt')
  const log = new lib.LevelLog(crdt, new lib.GroupCommit(db), lib.snapshotsBeside(dir))
  await log.open()
  const indexStore = lib.indexStore(crdt, dir)
  const replica = new lib.Replica(MESH_ID, key, SEAL_KEY, 10 + Math.floor(Math.random() * 1000), log, id)
  await replica.load()
  const mem = new lib.SharedMemory(replica, () => {}, { indexStore })
  await mem.ready
  const keys = async p => (await crdt.keys({ gte: p, lt: `${p.slice(0, -1)}"` }).all()).length
  return { db, crdt, replica, mem, sKeys: await keys('s!'), rKeys: await keys('r!') }
}
/** What a load found: the snapshot's fate, notes, how the index started, old keys left, files. */
const state = a => ({
  ignored: a.replica.snapshotIgnored ?? null,
  notes: a.mem.size,
  index: a.mem.indexStart,
  sKeys: a.sKeys,
  rKeys: a.rKeys,
  files: readdirSync(lib.snapshotsBeside(dir))
})
/** The ids a few recalls return. */
const recalls = async a => {
  const r = []
  for (const w of ['time', 'work', 'data system', 'net']) r.push((await a.mem.recall(w)).map(h => h.id))
  return r
}
const out = {}
let a = await open()
out.before = state(a)
const r1 = await recalls(a)
const json1 = JSON.stringify(a.replica.doc.getMap('memory').toJSON())
if (process.argv[3] === 'change') await a.mem.remember('migrated note about the staging cache', ['mig'])
await a.replica.snapshot()
await a.mem.persist()
await a.db.close()
a = await open()
out.after = state(a)
const r2 = await recalls(a)
const m = a.replica.doc.getMap('memory').toJSON()
const mig = Object.entries(m).find(([, v]) => v.content.startsWith('migrated')) ?? ['none']
delete m[mig[0]]
out.sameDoc = JSON.stringify(m) === json1
out.sameRecall = JSON.stringify(r1) === JSON.stringify(r2)
out.recallSample = r1.map(x => x.length)
await a.db.close()
removeDir(root)
process.stdout.write(`${JSON.stringify(out)}\n`)
