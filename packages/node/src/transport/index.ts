/**
 * The libp2p node of one session: TCP, the private-network protector (PSK derived from the
 * mesh's network secret), Noise, Yamux, identify, ping, gossipsub, kad-dht on a private
 * protocol id, the circuit-relay transport and optional mDNS. Keyed by the session key, so
 * the PeerId is the session's public key. See SPEC.md §4.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import type { ConnectionGater, Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { KadDHT } from '@libp2p/kad-dht'
import { type Ping, ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { keepSigningKey, weakEd25519Key } from '../identity/keys.js'
import { swarmKey } from '../identity/secrets.js'
import * as c from './constants.js'
import { cheapEmptyLengthPrefix } from './lp-decoder.js'
import { quietLogger } from './logger.js'
import { batchedWrites } from './noise-batch.js'
import { keptKeyCrypto } from './noise-crypto.js'
import { skipKnownProtocolMerges } from './protocol-merges.js'
import { halfWindowUpdates } from './yamux-window.js'

export type TransportServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  /** only when the mesh reaches beyond one machine or LAN (bootstrap peers or relays) */
  dht?: KadDHT
  /** only on a relay (SPEC.md §12.2) */
  relay?: CircuitRelayService
}

export type MeshLibp2p = Libp2p<TransportServices>

export interface TransportInit {
  privateKey: Ed25519PrivateKey
  meshId: string
  networkSecret: Uint8Array
  /** multiaddrs to listen on; default `/ip4/127.0.0.1/tcp/0` plus, with mdns, `/ip4/0.0.0.0/tcp/0` */
  listen?: string[]
  /** announce on the LAN with mDNS */
  mdns?: boolean
  /** run kad-dht: worth its traffic only across machines (bootstrap peers, relays) */
  dht?: boolean
  /** relay multiaddrs (with /p2p/<id>): load the circuit transport (reservations: relay-listen.ts) */
  relays?: string[]
  /** be a relay: a circuit relay v2 server with limits made for messages (SPEC.md §12.2) */
  relayServer?: { maxReservations: number }
  /** addresses to announce instead of the listening ones (a relay behind a cloud NAT) */
  announce?: string[]
  maxConnections?: number
  /** gossipsub mesh degree D (default 6); a relay forwards presence to many more members */
  gossipDegree?: number
  /** peers blocked for flooding (SPEC.md §8.8): no connection to or from them */
  blocked?: (peer: string) => boolean
  /** gossipsub's app-specific peer score (a blocked flooder scores -1000: graylisted) */
  peerScore?: (peer: string) => number
}

export async function createTransport(init: TransportInit): Promise<MeshLibp2p> {
  halfWindowUpdates()
  keepSigningKey(init.privateKey)
  cheapEmptyLengthPrefix()
  const listen = init.listen ?? (init.mdns === true ? ['/ip4/0.0.0.0/tcp/0'] : ['/ip4/127.0.0.1/tcp/0'])
  // Relays' /p2p-circuit addresses are not listen addresses here: libp2p would wait for each
  // relay at start, refuse to start while one is down (a failed listen is fatal) and never
  // renew a reservation its relay dropped. relay-listen.ts listens through each relay
  // whenever it connects. (A bare /p2p-circuit listen address would make the transport search
  // for relays forever, ~30 DHT queries a second per idle node.)
  const relays = init.relays ?? []
  // the DHT, the relay transport and mDNS are loaded only when used: a local session's node
  // starts without paying for modules it will not run (~100 ms of imports)
  // a node without a listener of its own is reachable only through a relay: it asks the DHT
  // but does not serve it, or every query would cross the relay on a circuit of its own
  const dht =
    init.dht === true || init.relayServer != null
      ? { dht: await dhtService(init.meshId, listen.length === 0 && init.relayServer == null) }
      : {}
  const relay = init.relayServer != null ? { relay: await relayService(init.relayServer.maxReservations) } : {}
  const relayed = init.dht === true || relays.length > 0
  const transports = relayed ? [tcp(), (await import('@libp2p/circuit-relay-v2')).circuitRelayTransport()] : [tcp()]
  const relayedMesh = relays.length > 0 || init.relayServer != null
  const discovery = init.mdns === true ? [(await import('@libp2p/mdns')).mdns({ serviceTag: c.mdnsServiceTag(init.meshId) })] : []
  const libp2p = await createLibp2p({
    privateKey: init.privateKey,
    logger: quietLogger(),
    start: false,
    addresses: { listen, ...(init.announce != null && init.announce.length > 0 ? { announce: init.announce } : {}) },
    transports,
    connectionProtector: preSharedKey({ psk: swarmKey(init.networkSecret, init.meshId) }),
    // X25519 keys kept as KeyObjects: OpenSSL's DER import cost more than the DHs (noise-crypto.ts);
    // the frames of one event-loop turn go out as one Noise message (noise-batch.ts)
    connectionEncrypters: [batchedWrites(noise({ crypto: keptKeyCrypto }))],
    streamMuxers: [yamux()],
    // libp2p pings every connection every 10 s and aborts it when a ping takes longer than
    // an adaptive timeout of at least 5 s. A relay serving many members, or a member talking
    // to one, can lag that long under load (event-loop stalls of 7 s were measured with 100
    // members on 2 cores); aborting then makes every member redial and handshake again,
    // which only deepens the lag. Give them longer.
    // the same on a mesh without relays: 50 nodes on 2 cores bursting DMs at each other lost
    // 600 connections to ping timeouts in 3 minutes, and every redial cost a handshake more
    connectionMonitor: { pingTimeout: init.relayServer != null ? c.RELAY_PING_TIMEOUT : c.MEMBER_PING_TIMEOUT },
    connectionManager: {
      // with relays, an address may be a busy relay whose handshakes queue: give it longer
      ...(relayedMesh ? relayedTimeouts : { addressDialTimeout: c.ADDRESS_DIAL_TIMEOUT_MS }),
      inboundConnectionThreshold: c.INBOUND_CONNECTION_THRESHOLD,
      maxIncomingPendingConnections: c.MAX_INCOMING_PENDING_CONNECTIONS,
      maxConnections: init.maxConnections ?? c.MAX_CONNECTIONS
    },
    peerDiscovery: discovery,
    connectionGater: gater(init.blocked ?? (() => false)),
    services: {
      identify: identify(),
      // libp2p's connection monitor pings every 10 s and waits up to a minute for an answer,
      // but the ping service allows one outbound stream per connection: a ping slower than
      // 10 s (a loaded relay) made the next one fail and that failure aborted a live
      // connection. Room for every ping that can overlap, on both ends.
      ping: ping({
        maxOutboundStreams: c.MAX_PING_STREAMS,
        maxInboundStreams: c.MAX_PING_STREAMS,
        timeout: c.RELAY_PING_TIMEOUT.maxTimeout
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        runOnLimitedConnection: true,
        // Every peer already proved mesh membership through the PSK, and many sessions on one
        // laptop share 127.0.0.1: the default same-IP penalty graylists them (stack.md 12).
        // The app-specific score is flood control's verdict (SPEC.md §9.3): a blocked flooder
        // falls below the graylist threshold, so everything it still sends is dropped unread.
        scoreParams: { IPColocationFactorWeight: 0, ...(init.peerScore != null ? { appSpecificScore: init.peerScore } : {}) },
        // every payload we publish (presence records, group envelopes) signs itself;
        // a second libp2p signature per message per hop buys nothing
        globalSignaturePolicy: 'StrictNoSign',
        ...(init.gossipDegree != null ? degree(init.gossipDegree) : {})
      }),
      ...dht,
      ...relay
    }
  })
  skipKnownProtocolMerges(libp2p)
  return libp2p as MeshLibp2p
}

async function dhtService(meshId: string, clientMode: boolean): Promise<ReturnType<typeof import('@libp2p/kad-dht').kadDHT>> {
  const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
  return kadDHT({ protocol: c.dhtProtocol(meshId), clientMode, peerInfoMapper: passthroughMapper })
}

/**
 * Relayed connections carry DMs, presence and gossip for as long as both ends live, so no
 * per-connection data or time limit (the defaults, 128 KiB and 2 minutes, would cut a busy
 * channel: stack.md 7). Reservations are bounded in number and refreshed by the clients.
 */
async function relayService(maxReservations: number): Promise<ReturnType<typeof import('@libp2p/circuit-relay-v2').circuitRelayServer>> {
  const { circuitRelayServer } = await import('@libp2p/circuit-relay-v2')
  return circuitRelayServer({
    reservations: { maxReservations, applyDefaultLimit: false },
    maxInboundHopStreams: 1024,
    maxOutboundStopStreams: 1024
  })
}

/**
 * Refuse connections to and from a blocked peer, once its id is known, and to and from a PeerId
 * whose key is one no signature of ours takes (SPEC.md §6.1): Noise checks the identity's
 * signature with node:crypto, which lets anyone "sign" for the identity point.
 */
export function gater(blocked: (peer: string) => boolean): ConnectionGater {
  const deny = (peer: PeerId): boolean => weakPeerId(peer) || blocked(peer.toString())
  return {
    denyDialPeer: async peer => deny(peer),
    denyInboundEncryptedConnection: async peer => deny(peer),
    denyOutboundEncryptedConnection: async peer => deny(peer)
  }
}

const weakPeerId = (peer: PeerId): boolean => peer.type === 'Ed25519' && weakEd25519Key(peer.publicKey.raw)

/**
 * A relay serving many members can stall for seconds (10-13 s event-loop stalls were measured
 * with 100 members on a loaded 2-core machine): every libp2p step bounded by 10 s (a whole
 * dial, an inbound upgrade, a stream's protocol negotiation) gets 30 s in a mesh with relays.
 */
const relayedTimeouts = {
  addressDialTimeout: c.RELAY_ADDRESS_DIAL_TIMEOUT_MS,
  dialTimeout: c.RELAY_ADDRESS_DIAL_TIMEOUT_MS,
  inboundUpgradeTimeout: c.RELAY_ADDRESS_DIAL_TIMEOUT_MS,
  inboundStreamProtocolNegotiationTimeout: c.RELAY_ADDRESS_DIAL_TIMEOUT_MS,
  outboundStreamProtocolNegotiationTimeout: c.RELAY_ADDRESS_DIAL_TIMEOUT_MS
}

/** Gossipsub's mesh bounds for a degree D (its defaults are 6 / 4 / 12 / 4 / 2). */
function degree(D: number): { D: number; Dlo: number; Dhi: number; Dscore: number; Dout: number } {
  return { D, Dlo: Math.ceil((D * 2) / 3), Dhi: D * 2, Dscore: Math.ceil((D * 2) / 3), Dout: 2 }
}
