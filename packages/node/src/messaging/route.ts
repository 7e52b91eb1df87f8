/**
 * Which path a DM takes (SPEC.md §12.4), as a pure function of what the node knows about its
 * recipient, so the rule is tested on its own and read in one place.
 */

export interface RouteFacts {
  /** a relay mailbox is configured */
  relays: boolean
  /** earlier DMs to this peer wait at a relay (queued for deposit or held there) */
  queuedAtRelay: boolean
  /** earlier DMs to this peer are still in flight on the direct channel */
  directBusy: boolean
  /** a connection to the peer is open */
  connected: boolean
  /** the peer as presence knows it */
  peer?: { online: boolean; host: string; addrs: string[] }
  /** this machine's host name */
  host: string
}

/**
 * True when the DM goes to a relay's mailbox: while earlier ones wait there (a recipient sees
 * one sender's messages in order), and whenever we are not connected to the peer, unless it
 * runs on this machine and listens directly. The relay pushes mail at once to a recipient
 * that is online, so a store-and-forward hop costs less than building a relayed connection to
 * each peer (a dial through the relay, two handshakes, a failure after seconds when the peer
 * has just gone). Without relays, always direct.
 */
export function viaMailbox(f: RouteFacts): boolean {
  if (!f.relays) return false
  if (f.queuedAtRelay) return true
  // earlier DMs still on the direct channel: queue behind them (a failure diverts them all, in order)
  if (f.directBusy || f.connected) return false
  // a peer on this machine that listens on a direct address is a cheap dial away
  const p = f.peer
  return p?.online !== true || p.host !== f.host || !p.addrs.some(a => !a.includes('/p2p-circuit'))
}
