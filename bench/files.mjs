// File transfer benchmark (issue 11), one JSON object on stdout, progress on stderr.
// Two agent processes (lib/agent.mjs), one node each, on loopback. Per round, alternating:
//  - raw: the floor, BENCH_FILES_MB of random bytes over one new libp2p stream (lpStream frames
//    of 1 MiB), from the request to the last byte;
//  - file: a fresh file of the same size (random content) shared by the first node (sealed into
//    chunks, not timed here) and fetched by the second with `files.get`: query, every chunk
//    requested within the credit window, hash-checked and stored, then opened into the
//    destination, hashed whole and synced. Timed from the call to its answer.
// MB/s = 1e6 bytes per second; the result reports the median of BENCH_FILES_ROUNDS rounds of
// each, and `ratio`: the median over rounds of file MB/s / raw MB/s of the same round.
// Target: file >= 70 % of raw.
// Env: BENCH_FILES_MB (64; BENCH_QUICK=1: 8), BENCH_FILES_ROUNDS (5; BENCH_QUICK=1: 3).
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { emit, guard, progress, round, section, tempDir } from './lib/harness.mjs'
import { withAgents } from './lib/agents.mjs'

const QUICK = process.env.BENCH_QUICK === '1'
const MB = Number(process.env.BENCH_FILES_MB ?? (QUICK ? 8 : 64))
const ROUNDS = Math.max(1, Number(process.env.BENCH_FILES_ROUNDS ?? (QUICK ? 3 : 5)))
const BYTES = Math.round(MB * 1e6)
const result = { ok: true, opts: { mb: MB, rounds: ROUNDS } }
guard(420_000, () => result)

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
const mbps = (bytes, ms) => round(bytes / 1e6 / (ms / 1000), 1)

/** A file of `bytes` random bytes, written in 1 MiB blocks. */
async function randomFile(path, bytes) {
  const out = createWriteStream(path)
  for (let left = bytes; left > 0; left -= 1 << 20) {
    if (!out.write(randomBytes(Math.min(1 << 20, left)))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

result.transfer = await section('transfer', async () =>
  withAgents(2, 'files', async ({ home, agents: [sharer, getter] }) => {
    const work = tempDir('claudemesh-bench-files-')
    const [[a], [b]] = await Promise.all([
      sharer.call('start', { home, mesh: 'bench', names: ['sharer'] }),
      getter.call('start', { home, mesh: 'bench', names: ['getter'] })
    ])
    await Promise.all([sharer.call('waitSee', { ids: [a, b] }), getter.call('waitSee', { ids: [a, b] })])
    await sharer.call('rawServe')
    const raw = []
    const file = []
    const share = []
    for (let r = 0; r < ROUNDS; r++) {
      const rr = await getter.call('rawFetch', { peer: a, bytes: BYTES }, 120_000)
      if (rr.bytes !== BYTES) throw new Error(`raw stream gave ${rr.bytes} bytes, not ${BYTES}`)
      raw.push(rr.ms)
      const src = join(work, `src-${r}.bin`)
      await randomFile(src, BYTES)
      const s = await sharer.call('fileShare', { path: src, to: 'getter' }, 120_000)
      share.push(s.ms)
      const g = await getter.call('fileGet', { id: s.id, dest: join(work, `got-${r}.bin`), from: a }, 300_000)
      if (g.bytes !== BYTES || g.fetchedBytes < BYTES)
        throw new Error(`file get gave ${g.bytes} bytes (${g.fetchedBytes} fetched), not ${BYTES}`)
      file.push(g.ms)
      progress(`round ${r + 1}/${ROUNDS}: raw ${mbps(BYTES, rr.ms)} MB/s, file ${mbps(BYTES, g.ms)} MB/s (share ${round(s.ms)} ms)`)
    }
    const rawMBps = mbps(BYTES, median(raw))
    const fileMBps = mbps(BYTES, median(file))
    // the machine is shared: each file run is compared with the raw run just before it, so a
    // change in load between rounds moves both sides of a ratio, not one
    const ratios = file.map((ms, i) => raw[i] / ms)
    const ratio = round(median(ratios), 3)
    return {
      ok: true,
      bytes: BYTES,
      rawMBps,
      fileMBps,
      ratio,
      ratios: ratios.map(x => round(x, 3)),
      rawMs: raw.map(x => round(x)),
      fileMs: file.map(x => round(x)),
      shareMs: share.map(x => round(x)),
      shareMBps: mbps(BYTES, median(share)),
      target: 'file >= 0.7 × raw',
      meets: ratio >= 0.7
    }
  })
)

emit(result)
