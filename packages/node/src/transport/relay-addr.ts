/** Relay addresses (SPEC.md §12.1): a multiaddr ending in `/p2p/<relay id>`, optionally `/p2p-circuit`. */

/** The address without a trailing `/p2p-circuit`. */
export const relayBase = (addr: string): string => addr.replace(/\/p2p-circuit\/?$/, '')

/** The relay's PeerId, or undefined when the address does not name one. */
export const relayId = (addr: string): string | undefined => /\/p2p\/([^/]+)\/?$/.exec(relayBase(addr))?.[1]
