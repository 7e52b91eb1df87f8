/**
 * `mesh_info` shows each relay as the node knows it (SPEC.md §7.2, §12.4): address, link,
 * mailbox stream, what it holds of ours and what it handed us. Here the relay is unreachable,
 * so the tool must say so rather than echo the mesh file (counts through a live relay:
 * relay/test/relay.test.ts and the CLI's ui-browser test).
 */
import { describe, expect, it } from 'vitest'
import { call, home, session } from './helpers.js'

describe('mesh_info and relays', () => {
  it('lists each relay with its link, mailbox stream, DMs it holds of ours and DMs it handed us', async () => {
    // a relay nobody runs (a fresh key's PeerId): port 1 on loopback refuses at once
    const relay = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWCngscR4tB1eSGjpyVjxcPNpBVE2RZz1hRJxtMMbXJT1j'
    const r = await call(await session(await home({ relays: [relay] }), 'alice'), 'mesh_info')
    expect(r.isError).toBeFalsy()
    expect((r.structuredContent as { relays: unknown[] }).relays).toEqual([
      { addr: relay, connected: false, mailbox: false, held: 0, received: 0 }
    ])
  })
})
