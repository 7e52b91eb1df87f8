/** Protocol ids and limits of the transport layer (SPEC.md §4). */

/** Kademlia on a private protocol id, so our DHT never mixes with the public IPFS one. */
export const dhtProtocol = (meshId: string): string => `/claudemesh/${meshId}/kad/1.0.0`

/** The mDNS service tag: peers of other meshes on the LAN ignore each other's answers. */
export const mdnsServiceTag = (meshId: string): string => `claudemesh-${meshId}`

/** Dials that fail the PSK handshake can hang; bound each address attempt (stack.md item 18). */
export const ADDRESS_DIAL_TIMEOUT_MS = 5_000
/** In a mesh with relays: a relay serving many members may take seconds to finish a handshake. */
export const RELAY_ADDRESS_DIAL_TIMEOUT_MS = 20_000

/** Many sessions on one laptop dial each other at once: allow bursts from one IP. */
export const INBOUND_CONNECTION_THRESHOLD = 200
export const MAX_INCOMING_PENDING_CONNECTIONS = 100
export const MAX_CONNECTIONS = 300
