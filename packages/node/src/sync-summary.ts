/**
 * The sync summary (SPEC.md §6.2): what a node holds, sent as the first frame of its presence
 * exchange on connect, so that the peer asks it for group history (§9.4) and CRDT updates
 * (§11.4) only when it holds something the peer lacks. Two nodes that hold the same (every
 * node of a fresh mesh, most nodes of a settled one) then open no sync stream at all.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { decodeFrame, encodeFrame, zBytes } from './codec.js'
import { MAX_SUMMARY_BYTES } from './presence/constants.js'
import type { VersionVector } from './state/replica.js'

const DIGEST_BYTES = 16

const SummarySchema = z
  .object({
    /** the replica's pull vector; absent: unknown, so the peer pulls */
    vv: z.record(z.string().max(128), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)).optional(),
    /** topic → digest of its newest history ids, for each group topic the node is in; absent: unknown */
    groups: z.record(z.string().max(128), zBytes({ len: DIGEST_BYTES })).optional()
  })
  .strict()
export type SyncSummary = z.infer<typeof SummarySchema>

export function encodeSummary(s: SyncSummary): Uint8Array {
  const out: SyncSummary = {}
  if (s.vv != null) out.vv = s.vv
  if (s.groups != null) out.groups = s.groups
  return encodeFrame(out)
}

export function decodeSummary(bytes: Uint8Array): SyncSummary {
  return decodeFrame(bytes, SummarySchema, MAX_SUMMARY_BYTES, 'sync summary')
}

/** The peer holds an update we lack: a stream it has counted further than we have. */
export function holdsMore(theirs: VersionVector, ours: VersionVector): boolean {
  for (const [stream, n] of Object.entries(theirs)) if (n > (ours[stream] ?? 0)) return true
  return false
}

/** Digest of a topic's newest history keys (`<ts>!<id>`, newest first); see SPEC.md §9.4. */
export function historyDigest(keys: Iterable<string>): Uint8Array {
  const h = createHash('sha256')
  for (const k of keys) h.update(k).update('\n')
  return new Uint8Array(h.digest().subarray(0, DIGEST_BYTES))
}

export const EMPTY_HISTORY = historyDigest([])
