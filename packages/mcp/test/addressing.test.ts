import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode, type MeshNode } from '@claudemesh/node'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterEach, describe, expect, it } from 'vitest'
import { ClaudemeshServer } from '../src/index.js'

const FAST = { heartbeatMs: 500, ttlMs: 3_000, graceMs: 1_500 }
const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s()
})

async function start(home: string, name: string): Promise<MeshNode> {
  const node = await createMeshNode({ home, mesh: 'team', session: randomUUID(), name, presence: FAST })
  await node.start()
  stops.push(async () => node.stop())
  return node
}

describe('list_peers and send_message with names two peers share (issue 10, item 9)', () => {
  it('list_peers gives each bob a qualified handle; send_message "bob" is refused listing both; a handle reaches its bob', async () => {
    const h = await mkdtemp(join(tmpdir(), 'cm-mcp-addr-'))
    stops.push(async () => rm(h, { recursive: true, force: true }))
    await createMesh(h, 'team')
    const alice = await start(h, 'alice')
    const bobs = [await start(h, 'bob'), await start(h, 'BOB')]
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (bobs.every(b => alice.presence.get(b.peerId)?.online === true)) resolve()
      }
      alice.addEventListener('peer:join', check)
      check()
    })
    const server = await ClaudemeshServer.create(alice, {})
    const [a, b] = InMemoryTransport.createLinkedPair()
    const client = new Client({ name: 'test', version: '1' })
    await server.connect(a)
    await client.connect(b)
    stops.push(async () => {
      await client.close()
      await server.close()
    })
    const call = async (
      name: string,
      args: Record<string, unknown>
    ): Promise<{ isError?: boolean; structuredContent?: Record<string, unknown>; content: unknown[] }> =>
      CallToolResultSchema.parse(await client.callTool({ name, arguments: args }, CallToolResultSchema))

    const listed = (await call('list_peers', {})).structuredContent?.peers as Array<{ id: string; handle: string }>
    for (const bob of bobs) expect(listed.find(p => p.id === bob.peerId)?.handle).toBe(`${bob.self().name}#${bob.peerId.slice(-6)}`)
    const refused = await call('send_message', { to: 'bob', message: 'hi' })
    expect(refused.isError).toBe(true)
    const text = (refused.content[0] as { text: string }).text
    expect(text).toMatch(/^send_message: "bob" matches 2 peers: /)
    for (const bob of bobs) expect(text).toContain(`${bob.self().name}#${bob.peerId.slice(-6)} (${bob.peerId})`)
    const second = bobs[1]
    const sent = await call('send_message', { to: `bob#${second?.peerId.slice(-6)}`, message: 'hi' })
    expect((sent.structuredContent?.results as Array<{ to: string }> | undefined)?.[0]?.to).toBe(second?.peerId)
  })
})
