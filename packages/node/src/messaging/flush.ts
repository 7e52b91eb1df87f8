/**
 * A graceful stop's last effort for queued DMs (SPEC.md §8.7): retry every one now and wait,
 * at most `ms`, until none is left without a recipient's or a relay's acknowledgement.
 * Returns at once when nothing queued has a way out (no connected or online recipient, no
 * open relay mailbox), so a stop with DMs for long-gone peers costs nothing.
 */
import type { DirectMessages } from './dm.js'
import type { Outbox } from './outbox.js'

/** Resolves with how many DMs are still queued. */
export async function flushOutbox(dm: DirectMessages, outbox: Outbox, ms: number): Promise<number> {
  if (outbox.size === 0 || ms <= 0 || !dm.movable()) return outbox.size
  await new Promise<void>(resolve => {
    // every settled DM emits message:status after the outbox has dropped it
    const check = (): void => {
      if (outbox.size === 0) done()
    }
    const done = (): void => {
      clearTimeout(timer)
      dm.removeEventListener('message:status', check)
      resolve()
    }
    const timer = setTimeout(done, ms)
    dm.addEventListener('message:status', check)
    dm.retryNow()
  })
  return outbox.size
}
