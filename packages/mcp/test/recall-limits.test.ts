/** The MCP `recall` tool with a query over the bounds: an error result that says why (issue 10, item 10). */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMesh, createMeshNode } from '@claudemesh/node'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { expect, it } from 'vitest'
import { ClaudemeshServer } from '../src/index.js'

it('recall answers a too-long query with a clear error, and still recalls', async () => {
  const h = await mkdtemp(join(tmpdir(), 'cm-mcp-'))
  await createMesh(h, 'team')
  const node = await createMeshNode({ home: h, mesh: 'team', session: randomUUID(), name: 'alice' })
  await node.start()
  const server = await ClaudemeshServer.create(node, {})
  const [a, b] = InMemoryTransport.createLinkedPair()
  const client = new Client({ name: 'test', version: '1' })
  try {
    await server.connect(a)
    await client.connect(b)
    await node.data.memory.remember('the staging database lives on host db-2')
    const call = async (query: string): Promise<{ isError?: boolean; content: unknown[] }> =>
      CallToolResultSchema.parse(await client.callTool({ name: 'recall', arguments: { query } }, CallToolResultSchema))
    const long = await call('x'.repeat(1000))
    expect(long.isError).toBe(true)
    expect(JSON.stringify(long.content)).toMatch(/a recall query is at most 256 characters \(this one has 1000\)/)
    const many = await call(Array.from({ length: 20 }, (_, i) => `word${i}`).join(' '))
    expect(JSON.stringify(many.content)).toMatch(/at most 16 different words/)
    const ok = await call('staging')
    expect(ok.isError).not.toBe(true)
    expect(JSON.stringify(ok.content)).toMatch(/1 memory note/)
  } finally {
    await client.close()
    await server.close()
    await node.stop()
    await rm(h, { recursive: true, force: true })
  }
})
