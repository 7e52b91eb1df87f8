/**
 * `mesh_info` shows each relay as the node knows it (SPEC.md §7.2, §12.4): address, link,
 * mailbox stream, what it holds of ours and what it handed us. Here the relay is unreachable,
 * so the tool must say so rather than echo the mesh file (counts through a live relay:
 * relay/test/relay.test.ts and the CLI's ui-browser test).
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode } from '@claudemesh/node'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { describe, expect, it } from 'vitest'
import { ClaudemeshServer } from '../src/index.js'
import { call, FAST, stops } from './helpers.js'

describe('mesh_info and relays', () => {
  it('lists each relay with its link, mailbox stream, DMs it holds of ours and DMs it handed us', async () => {
    const h = await mkdtemp(join(tmpdir(), 'cm-mcp-relays-'))
    stops.push(async () => rm(h, { recursive: true, force: true }))
    // a relay nobody runs (a fresh key's PeerId): port 1 on loopback refuses at once
    const relay = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWCngscR4tB1eSGjpyVjxcPNpBVE2RZz1hRJxtMMbXJT1j'
    await createMesh(h, 'team', { relays: [relay] })
    const node = await createMeshNode({ home: h, mesh: 'team', session: randomUUID(), name: 'alice', presence: FAST })
    await node.start()
    const server = await ClaudemeshServer.create(node, {})
    const [a, b] = InMemoryTransport.createLinkedPair()
    const client = new Client({ name: 'test', version: '1' })
    await server.connect(a)
    await client.connect(b)
    stops.push(async () => {
      await client.close()
      await server.close()
      await node.stop()
    })
    const r = await call(
      { node, server, client, notes: [], all: [], events: new EventTarget(), nextNote: async () => undefined },
      'mesh_info'
    )
    expect(r.isError).toBeFalsy()
    expect((r.structuredContent as { relays: unknown[] }).relays).toEqual([
      { addr: relay, connected: false, mailbox: false, held: 0, received: 0 }
    ])
  })
})
