import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode } from '@claudemesh/node'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterEach, describe, expect, it } from 'vitest'
import { ClaudemeshServer } from '../src/index.js'

const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s()
})

describe('set_state bounds its input (issue 10, item 14)', () => {
  it('a value nested 100,000 deep is an isError with the depth limit, not a stack overflow; 15 levels are stored', async () => {
    const h = await mkdtemp(join(tmpdir(), 'cm-mcp-lim-'))
    stops.push(async () => rm(h, { recursive: true, force: true }))
    await createMesh(h, 'team')
    const node = await createMeshNode({ home: h, mesh: 'team', session: randomUUID(), name: 'alice' })
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
    const setState = async (value: unknown): Promise<{ isError?: boolean; content: unknown[] }> =>
      CallToolResultSchema.parse(await client.callTool({ name: 'set_state', arguments: { key: 'k', value } }, CallToolResultSchema))
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    const r = await setState(deep)
    expect(r.isError).toBe(true)
    expect(r.content).toEqual([{ type: 'text', text: 'set_state: the value is nested deeper than 15 levels (the limit)' }])
    expect(node.data.state.size).toBe(0)
    let ok: unknown = 'x'
    for (let i = 0; i < 15; i++) ok = { d: ok }
    expect((await setState(ok)).isError).toBeUndefined()
    expect(node.data.state.get('k')?.value).toEqual(ok)
  })
})
