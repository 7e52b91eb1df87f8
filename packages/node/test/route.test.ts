/** The DM path rule (SPEC.md §12.4) on its own: every fact that moves a DM between direct and the mailbox. */
import { describe, expect, it } from 'vitest'
import { type RouteFacts, viaMailbox } from '../src/messaging/route.js'

const base: RouteFacts = { relays: true, queuedAtRelay: false, directBusy: false, connected: false, host: 'laptop' }
const here = { online: true, host: 'laptop', addrs: ['/ip4/127.0.0.1/tcp/4001'] }
const relayed = '/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWRelay/p2p-circuit'

describe('viaMailbox', () => {
  it.each<[string, Partial<RouteFacts>, boolean]>([
    ['no relay configured: always direct, even to an offline peer', { relays: false, peer: { ...here, online: false } }, false],
    ['earlier DMs wait at a relay: behind them, even when connected', { queuedAtRelay: true, connected: true, directBusy: true }, true],
    ['earlier DMs in flight on the direct channel: behind them', { directBusy: true }, false],
    ['connected: direct', { connected: true, peer: { ...here, host: 'elsewhere' } }, false],
    ['not connected and unknown to presence: mailbox', {}, true],
    ['not connected and offline: mailbox', { peer: { ...here, online: false } }, true],
    ['online on this machine with a direct address: a cheap dial, direct', { peer: here }, false],
    ['online on this machine but reachable only through a relay: mailbox', { peer: { ...here, addrs: [relayed] } }, true],
    ['online on another machine, not connected: mailbox', { peer: { ...here, host: 'desktop' } }, true]
  ])('%s', (_what, facts, expected) => {
    expect(viaMailbox({ ...base, ...facts })).toBe(expected)
  })
})
