/**
 * V8 heap policy for a process that hosts a mesh node: the CLI's `daemon`, `mcp` and
 * `courier`, and the bench's agents (bench/lib/agent.mjs), which call the same functions so
 * that they measure what ships. Not for the relay: it is one process for a whole mesh, where
 * CPU is worth more than memory. Flags set at run time, before the node package loads.
 */
import { setFlagsFromString } from 'node:v8'

/**
 * After each major GC V8 lets the old generation grow to a multiple of what survived, chosen
 * between 1.1 and 4 from how fast the GC ran against the program: under a burst of DMs it picks
 * the top, and a process kept ~4× its live heap resident, mostly garbage (bench/load.mjs 100x1000
 * direct: live heap 73-110 MB an agent of 20 nodes, RSS ~400 MB). 1.6 instead, once the node has
 * started. 100x1000, 100 nodes in 5 processes, alternating with the build before (a loaded
 * machine): direct peak RSS 1968/1928 -> 1483/1490 MB, the warm round's 2754/2672 -> 2117/2138 MB,
 * CPU 37.1/35.3 -> 43.5/38.4 s, p50 12.4/11.3 -> 14.2/12.5 s; via the relay (itself unbounded)
 * 2330/2243 -> 1551/1547 MB with CPU 76.4/58.7 -> 66.5/55.9 s. 100 percent kept 1578-1651 MB.
 * Not during the start: a heap growing from nothing then ran three full GCs instead of one
 * (~30 ms more CPU to join).
 */
export const HEAP_GROWING_PERCENT = 60

/** The old generation grows by HEAP_GROWING_PERCENT after each major GC (the whole process, from now on). */
export function boundOldGeneration(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
}

/**
 * V8 grows the young generation (default up to 2 × 16 MB) when many objects survive, which is
 * what loading and starting a node does; the pages stay resident afterwards: 8-14 MB of an idle
 * daemon's RSS (bench/foundation.mjs idleRss). Held at its initial size until the node has
 * started, then free to grow for bursts of traffic.
 */
export function nodeStarting(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--heap-growing-percent=0') // V8's own factor (the flag's default)
}

/**
 * The node has started: the young generation may grow again, the old one is bounded. These are
 * the flags a code cache is read and written under (packages/cli/src/node-bundle.ts): V8 refuses
 * a cache written under other flags than the ones it is read under.
 */
export function nodeStarted(): void {
  setFlagsFromString('--semi-space-growth-factor=2')
  boundOldGeneration()
}
