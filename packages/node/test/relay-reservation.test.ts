/**
 * The pnpm patch of @libp2p/circuit-relay-v2 (patches/, pnpm-workspace.yaml): each relayed
 * connection to a member listens to that member's reservation signal until it ends, so a relay
 * with more than 10 circuits to one member at once printed Node's MaxListenersExceededWarning
 * ("Possible EventTarget memory leak detected") though nothing leaked. The patched store lifts
 * the limit on the signals it makes.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'

interface Store {
  reserve: (peer: unknown, addr: unknown) => { status: number }
  get: (peer: unknown) => { signal: AbortSignal } | undefined
}

async function reservationStore(): Promise<Store> {
  // the store is not exported: loaded from the installed package's files
  const main = createRequire(import.meta.url).resolve('@libp2p/circuit-relay-v2')
  const file = join(dirname(main), 'server', 'reservation-store.js')
  const { ReservationStore } = (await import(pathToFileURL(file).href)) as { ReservationStore: new (c: object) => Store }
  return new ReservationStore({ logger: defaultLogger() })
}

describe('circuit relay reservations', () => {
  it('a reservation signal takes more than 10 listeners without a warning', async () => {
    const store = await reservationStore()
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    store.reserve(peer, multiaddr('/ip4/127.0.0.1/tcp/1'))
    const signal = store.get(peer)?.signal
    expect(signal).toBeInstanceOf(AbortSignal)
    const warnings: string[] = []
    const onWarning = (w: Error): void => {
      warnings.push(`${w.name}: ${w.message}`)
    }
    process.on('warning', onWarning)
    try {
      // as 16 relayed connections to the member do (createLimitedRelay's anySignal)
      for (let i = 0; i < 16; i++) signal?.addEventListener('abort', () => {})
      // Node emits the warning on the next tick
      await new Promise<void>(resolve => {
        setImmediate(resolve)
      })
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter(w => w.includes('MaxListeners'))).toEqual([])
  })
})
