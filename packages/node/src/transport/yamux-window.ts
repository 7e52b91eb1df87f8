/**
 * Yamux window updates at half a window (SPEC.md §4), as go-yamux and hashicorp/yamux send
 * them. @chainsafe/libp2p-yamux 8 answers every data frame it receives with a window update
 * frame of its own: a 12-byte frame that costs a Noise seal, the PSK cipher and a socket
 * write each. On a relay under a DM burst that was 17 % of its CPU, in one syscall per
 * frame received. Here a stream sends an update only once half its receive window is used
 * (or when a flag must go out: SYN, ACK). The remote can always send: it has at least half
 * a window left until the update comes. Applied once per process, to every yamux stream.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { logger } from '@libp2p/logger'

const log = logger('claudemesh:transport')

/** The fields of a yamux stream this reads and writes (8.0.x; checked before patching). */
interface WindowedStream {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  maxStreamWindowSize: number
  epochStart: number
  streamId: number
  getRTT: () => number
  getSendFlags: () => number
  sendFrame: (header: { type: number; flag: number; streamID: number; length: number }) => boolean
}

/** yamux frame type 1 (RFC-like spec of hashicorp/yamux): a window update */
const WINDOW_UPDATE = 1
const PATCHED = Symbol.for('claudemesh.yamux.halfWindowUpdates')

/** counts, for tests and benches: updates sent and updates a data frame no longer needed */
export const windowUpdateStats = { sent: 0, skipped: 0 }

function sendWindowUpdate(this: WindowedStream): void {
  if (this.state === StreamState.Paused) {
    // no updates while paused: the remote runs out of window and stops
    this.epochStart = Date.now()
    return
  }
  const flags = this.getSendFlags()
  if (flags === 0 && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) {
    windowUpdateStats.skipped++
    return
  }
  const now = Date.now()
  const rtt = this.getRTT()
  // a window drained within 4 round trips is too small: double it (the library's tuning)
  if (flags === 0 && rtt > -1 && now - this.epochStart <= rtt * 4) {
    this.recvWindow = Math.min(this.recvWindow * 2, this.maxStreamWindowSize)
  }
  const delta = this.recvWindow - this.recvWindowCapacity
  this.recvWindowCapacity = this.recvWindow
  this.epochStart = now
  windowUpdateStats.sent++
  this.sendFrame({ type: WINDOW_UPDATE, flag: flags, streamID: this.streamId, length: delta })
}

/** Install the half-window rule on YamuxStream once; a yamux without the expected shape is left alone. */
export function halfWindowUpdates(): void {
  const proto = YamuxStream.prototype as unknown as Record<string | symbol, unknown>
  if (proto[PATCHED] === true) return
  if (typeof proto.sendWindowUpdate !== 'function' || typeof proto.getSendFlags !== 'function' || StreamState.Paused == null) {
    log.error('yamux has changed shape: window updates stay one per data frame')
    return
  }
  proto.sendWindowUpdate = sendWindowUpdate
  proto[PATCHED] = true
}
