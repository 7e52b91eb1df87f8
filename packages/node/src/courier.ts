/**
 * The courier (SPEC.md §8.7). A session that stops gracefully tries for a few seconds to hand
 * its queued DMs to their recipients or a relay; whatever is still queued is carried by a
 * courier: the same node code on the same store, started detached by the stopping process,
 * without being the session (no presence record, groups or shared state). It runs until the
 * outbox is empty (everything delivered, held by a relay, or failed at its TTL), until a
 * newer incarnation of the session replaces it, until it is told to stop, or until the
 * session's key is gone from the home.
 */
import { access } from 'node:fs/promises'
import { paths } from './home.js'
import { createMeshNode } from './create-node.js'
import type { MeshNodeInit } from './node.js'

/**
 * How a courier ended: `nothing` to carry (the session handed everything over), `done`
 * (the outbox is empty), `superseded` (a newer incarnation or another courier runs: it was
 * not started), `replaced` (a newer incarnation took over while it ran), `stopped` (told to),
 * `orphaned` (the session's key is gone from the home).
 */
export type CourierOutcome = 'nothing' | 'done' | 'superseded' | 'replaced' | 'stopped' | 'orphaned'

export interface CourierOptions {
  signal?: AbortSignal
  /** how often to check that the session's key file still exists (default 5 s) */
  checkMs?: number
  /** called once the node runs, with how many DMs it carries */
  onStart?: (queued: number) => void
}

export async function runCourier(
  init: MeshNodeInit & { courier: { incarnation: number } },
  opts: CourierOptions = {}
): Promise<CourierOutcome> {
  const node = await createMeshNode(init)
  try {
    await node.start()
  } catch (err) {
    if ((err as Error).name === 'SupersededError') return 'superseded'
    throw err
  }
  if (!node.running) return 'nothing'
  opts.onStart?.(node.queued)
  const keyFile = paths.sessionKey(init.home, node.mesh.name, node.key.session)
  let timer: ReturnType<typeof setInterval> | undefined
  const outcome = await new Promise<CourierOutcome>(resolve => {
    const check = (): void => {
      if (node.queued === 0) resolve('done')
    }
    node.addEventListener('message:status', check)
    node.addEventListener(
      'node:stopped',
      e => {
        resolve(e.detail.reason === 'replaced' ? 'replaced' : 'stopped')
      },
      { once: true }
    )
    if (opts.signal?.aborted === true) resolve('stopped')
    opts.signal?.addEventListener(
      'abort',
      () => {
        resolve('stopped')
      },
      { once: true }
    )
    timer = setInterval(() => {
      access(keyFile).then(check, () => {
        resolve('orphaned')
      })
    }, opts.checkMs ?? 5_000)
    check()
  })
  clearInterval(timer)
  // told to stop: one more bounded try, as any graceful stop; otherwise nothing is left to try
  await node.stop({ flushMs: outcome === 'stopped' ? undefined : 0 }).catch(() => {})
  return outcome
}
