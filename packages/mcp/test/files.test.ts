import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { call, home, meet, session, until } from './helpers.js'

const text = (r: { content: unknown[] }): string => (r.content[0] as { text: string }).text
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('files over MCP', () => {
  it('share_file announces; get_file fetches and writes it; list_files and unpin_file; bad input is an isError line', async () => {
    const h = await home()
    const a = await session(h, 'alice')
    const b = await session(h, 'bob', { mode: 'off' })
    await meet(a, b)
    const data = randomBytes(1_300_000)
    await writeFile(join(h, 'plan\u202e.bin'), data)
    const shared = await call(a, 'share_file', { path: join(h, 'plan\u202e.bin'), to: 'bob', message: 'the plan' })
    expect(shared.isError).toBeFalsy()
    const file = (shared.structuredContent as { file: { id: string; size: number; chunks: number; role: string } }).file
    expect(file).toMatchObject({ size: 1_300_000, chunks: 2, role: 'shared' })
    expect(text(shared)).toMatch(new RegExp(`^shared "plan.*\\.bin" \\(1\\.3 MB\\) as ${file.id}$`))
    await until(
      b.node,
      ['message:receive'],
      async () => (await b.node.mail.inbox.list({ unreadOnly: true })).length > 0,
      15_000,
      'the announcement'
    )
    const msgs = (await call(b, 'check_messages')).structuredContent as { messages: Array<{ body: string; from_name: string }> }
    expect(msgs.messages[0]?.from_name).toBe('alice')
    expect(msgs.messages[0]?.body).toContain(`id ${file.id}`)
    const got = await call(b, 'get_file', { id: file.id, dest: join(h, 'got.bin') })
    expect(got.isError).toBeFalsy()
    expect(got.structuredContent).toMatchObject({
      path: join(h, 'got.bin'),
      reused_chunks: 0,
      holders: [a.node.peerId],
      file: { id: file.id, state: 'complete', role: 'fetched', from_name: 'alice' }
    })
    expect((got.structuredContent as { file: { name: string } }).file.name.includes('\u202e')).toBe(false)
    expect(sha(await readFile(join(h, 'got.bin')))).toBe(sha(data))
    const listed = await call(b, 'list_files')
    expect(listed.structuredContent).toMatchObject({ files: [{ id: file.id, have: 2 }], max_file_bytes: 100_000_000 })
    expect((await call(b, 'unpin_file', { id: file.id })).structuredContent).toEqual({ unpinned: true })
    expect((await call(b, 'list_files')).structuredContent).toMatchObject({ files: [] })
    for (const [tool, args, re] of [
      ['get_file', { id: 'nope' }, /file id/],
      ['get_file', { id: file.id, dest: join(h, 'got.bin') }, /already exists/],
      ['share_file', { path: join(h, 'missing'), to: 'bob' }, /no regular file/],
      ['share_file', { path: join(h, 'got.bin'), to: 'carol' }, /no peer "carol"/]
    ] as Array<[string, Record<string, unknown>, RegExp]>) {
      const bad = await call(b, tool, args)
      expect(bad.isError).toBe(true)
      expect(text(bad)).toMatch(re)
    }
  })
})
