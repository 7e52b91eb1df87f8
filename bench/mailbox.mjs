// The relay's mailbox server alone (relay/src/mailbox.ts, SPEC.md §12.3–12.5), one JSON object on
// stdout, progress on stderr: a real LevelDB store with its synced group commit, members played
// by raw mailbox streams in this process (stream pairs, no network, no libp2p node), so the CPU
// it reports is the mailbox's own (plus the streams' framing), without the load bench's 100
// member nodes on the same cores. Two phases, MB_MEMBERS senders each depositing MB_DMS DMs to
// seeded-random ones of MB_MEMBERS recipients in one burst:
//  - live: every recipient's stream is open during the burst; each acks what it received once
//    per turn of the event loop (as a member's node does, §12.3);
//  - deep: recipients are away during the burst (every box MB_DMS deep on average), then all
//    connect at once and drain their boxes.
// Per phase: wall ms, process CPU seconds (user+sys), deposits/s, and whether every DM arrived
// once and in order per sender → recipient.
// Env: MB_MEMBERS (100; BENCH_QUICK=1: 20), MB_DMS (1000; quick: 200), MB_ROUNDS (1), BENCH_SEED (1), MB_ACK_MS (0: recipients ack
// once per turn; n: once every n ms, a slow recipient with much mail in flight),
// CLAUDEMESH_BENCH_RELAY_DIST=<a copy of relay/dist inside relay/, e.g. relay/dist/base> for A/B.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { emit, seeded } from './lib/harness.mjs'
import { importFrom } from './lib/resolve.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const relayDist = process.env.CLAUDEMESH_BENCH_RELAY_DIST ?? join(root, 'relay/dist')
const nodeDist = join(root, 'packages/node/dist')
const quick = process.env.BENCH_QUICK === '1'
const N = Number(process.env.MB_MEMBERS ?? (quick ? 20 : 100))
const M = Number(process.env.MB_DMS ?? (quick ? 200 : 1000))
const ROUNDS = Number(process.env.MB_ROUNDS ?? 1)
const SEED = Number(process.env.BENCH_SEED ?? 1)
/** a slow recipient: acks what it got once every MB_ACK_MS ms (0: once per turn), so the relay has much mail in flight */
const ACK_MS = Number(process.env.MB_ACK_MS ?? 0)
const MESH = '0123456789abcdef'

await import(pathToFileURL(join(nodeDist, 'polyfill.js')).href)
const node = await import(pathToFileURL(join(nodeDist, 'index.js')).href)
const { newEd25519Key, peerIdOfRaw } = await import(pathToFileURL(join(nodeDist, 'identity/keys.js')).href)
const { newMessageId, sealDm } = await import(pathToFileURL(join(nodeDist, 'messaging/envelope.js')).href)
const { MailboxServer, createLog } = await import(pathToFileURL(join(relayDist, 'index.js')).href)
const { lpStream, streamPair } = await importFrom(join(root, 'relay'), '@libp2p/utils')
const { decodeDm, decodeMailboxFrame, encodeMailboxFrame, GroupCommit, idText, lpOptions, MAX_MAILBOX_FRAME_BYTES, openStore, sublevel } =
  node

const progress = msg => {
  process.stderr.write(`[mailbox] ${msg}\n`)
}

async function phase(name, deep) {
  const dir = mkdtempSync(join(tmpdir(), 'claudemesh-bench-mailbox-'))
  const store = await openStore(join(dir, 'db'), { version: 1, migrations: { 0: async () => {} } })
  let handler
  const libp2p = {
    handle: async (_, h) => {
      handler = h
    },
    unhandle: async () => {}
  }
  const db = sublevel(store, 'mailbox')
  const commit = new GroupCommit(store)
  const mailbox = new MailboxServer(libp2p, db, commit, MESH, createLog('error'))
  await mailbox.start()
  const mk = async i => {
    const key = await newEd25519Key()
    const pub = key.publicKey.raw
    return { i, pub, conn: { remotePeer: peerIdOfRaw(pub) }, got: new Map(), received: 0, dups: 0, ooo: 0, held: 0 }
  }
  const senders = []
  const recipients = []
  for (let i = 0; i < N; i++) senders.push(await mk(i))
  for (let i = 0; i < N; i++) recipients.push(await mk(i))
  const streams = []
  const expected = N * M
  let received = 0
  let held = 0
  let done
  let allHeld
  const allIn = new Promise(resolve => {
    done = resolve
  })
  const heldAll = new Promise(resolve => {
    allHeld = resolve
  })
  /** a member's stream: counts its mail (order per sender by `ts`), acks once per turn, counts `h` */
  async function open(m) {
    const [mine, relays] = await streamPair({ capacity: 1 << 20 })
    streams.push(mine, relays)
    handler(relays, m.conn)
    const lp = lpStream(mine, lpOptions(MAX_MAILBOX_FRAME_BYTES))
    let pending = []
    let scheduled = false
    const flush = () => {
      scheduled = false
      const ids = pending
      pending = []
      for (let i = 0; i < ids.length; i += 1024) void lp.write(encodeMailboxFrame({ t: 'a', ids: ids.slice(i, i + 1024) })).catch(() => {})
    }
    m.lp = lp
    void (async () => {
      try {
        while (true) {
          const f = decodeMailboxFrame((await lp.read()).subarray())
          if (f.t === 'h') {
            m.held += f.ids.length
            held += f.ids.length
            if (held === expected) allHeld()
          }
          if (f.t !== 'm') continue
          const e = decodeDm(f.e)
          const from = idText(e.from)
          const last = m.got.get(from) ?? -Infinity
          if (e.ts <= last) {
            if (e.ts === last) m.dups++
            else m.ooo++
          } else {
            m.got.set(from, e.ts)
            m.received++
            if (++received === expected) done()
          }
          pending.push(e.id)
          if (!scheduled) {
            scheduled = true
            if (ACK_MS > 0) setTimeout(flush, ACK_MS)
            else setImmediate(flush)
          }
        }
      } catch {}
    })()
  }
  const rand = seeded(SEED)
  const now = Date.now()
  // envelopes made before the clock starts: sealing is the member's cost, not the relay's
  const plans = senders.map(s => {
    const frames = []
    for (let k = 0; k < M; k++) {
      const r = recipients[Math.floor(rand() * N)]
      // ts orders one sender's DMs (the relay checks ts only against the skew bound)
      const e = sealDm(
        MESH,
        new Uint8Array(32),
        { from: s.pub, to: r.pub, id: newMessageId(), ts: now - M + k, exp: now + 3_600_000 },
        {
          body: `dm ${k} `.padEnd(200, '.'),
          pri: 'next'
        }
      )
      frames.push(encodeMailboxFrame({ t: 'm', e }))
    }
    return frames
  })
  for (const m of senders) await open(m)
  if (!deep) for (const m of recipients) await open(m)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    senders.map(async (s, i) => {
      const frames = plans[i]
      for (let k = 0; k < frames.length; k += 100) await s.lp.writeV(frames.slice(k, k + 100))
    })
  )
  let depositMs
  let depositCpu
  if (deep) {
    // every box is full before its member comes back; then all drain at once
    await heldAll
    depositMs = performance.now() - t0
    const c = process.cpuUsage(cpu0)
    depositCpu = Math.round((c.user + c.system) / 1e4) / 100
    for (const m of recipients) await open(m)
  }
  await allIn
  const wallMs = performance.now() - t0
  const c = process.cpuUsage(cpu0)
  const dups = recipients.reduce((a, m) => a + m.dups, 0)
  const ooo = recipients.reduce((a, m) => a + m.ooo, 0)
  // every box empties once the last acks are in
  while (mailbox.size.messages > 0) await new Promise(resolve => setTimeout(resolve, 10))
  // and their deletes are on disk: a write issued now lands after them
  await commit.write([{ type: 'del', sublevel: db, key: 'x' }])
  const cpuSeconds = Math.round((c.user + c.system) / 1e4) / 100
  const out = {
    phase: name,
    dms: expected,
    received,
    dups,
    outOfOrder: ooo,
    wallMs: Math.round(wallMs),
    cpuSeconds,
    dmsPerSecond: Math.round(expected / (wallMs / 1000))
  }
  if (deep)
    Object.assign(out, {
      depositMs: Math.round(depositMs),
      depositCpuSeconds: depositCpu,
      drainMs: Math.round(wallMs - depositMs),
      drainCpuSeconds: Math.round((cpuSeconds - depositCpu) * 100) / 100
    })
  for (const s of streams) s.abort(new Error('bench over'))
  await mailbox.stop()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  return out
}

const result = { relayDist, members: N, dmsPerMember: M, ackMs: ACK_MS, seed: SEED, rounds: [] }
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, deep] of [
    ['live', false],
    ['deep', true]
  ]) {
    const out = await phase(name, deep)
    progress(JSON.stringify(out))
    result.rounds.push(out)
  }
}
emit(result)
