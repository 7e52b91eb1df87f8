/** Protocol ids and limits of the transport layer (SPEC.md §4). */

/** Kademlia on a private protocol id, so our DHT never mixes with the public IPFS one. */
export const dhtProtocol = (meshId: string): string => `/claudemesh/${meshId}/kad/1.0.0`

/** The mDNS service tag: peers of other meshes on the LAN ignore each other's answers. */
export const mdnsServiceTag = (meshId: string): string => `claudemesh-${meshId}`

/** Dials that fail the PSK handshake can hang; bound each address attempt (stack.md item 18). */
export const ADDRESS_DIAL_TIMEOUT_MS = 5_000
/**
 * In a mesh with relays: a relay serving many members may take seconds per handshake round
 * trip. Also the bound on a whole dial and on an inbound upgrade there: libp2p's own (10 s)
 * cut relay dials short, and a dial given up wastes the handshake work the relay already did,
 * so a busy relay got busier with every retry (SPEC.md §4).
 */
export const RELAY_ADDRESS_DIAL_TIMEOUT_MS = 30_000

/** Many sessions on one laptop dial each other at once: allow bursts from one IP. */
export const INBOUND_CONNECTION_THRESHOLD = 200
export const MAX_INCOMING_PENDING_CONNECTIONS = 100
export const MAX_CONNECTIONS = 300

/** Bounds of the connection monitor's adaptive ping timeout in a mesh with relays (SPEC.md §4). */
export const MEMBER_PING_TIMEOUT = { minTimeout: 30_000, maxTimeout: 60_000 }
export const RELAY_PING_TIMEOUT = { minTimeout: 30_000, maxTimeout: 60_000 }

/**
 * Ping streams per connection, each way: libp2p's connection monitor pings every 10 s and
 * waits up to 60 s (above), so up to 6 may be in flight on a slow connection (SPEC.md §4).
 */
export const MAX_PING_STREAMS = 10
