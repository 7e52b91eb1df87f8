import { describe, expect, it } from 'vitest'
import { cli, daemonWorld } from './helpers.js'

const { home, daemon } = daemonWorld('cm-msg-')

interface Inbox {
  messages: Array<{ id: string; body: string; fromName: string; replyTo?: string }>
  remaining: number
}

async function inbox(name: string, env: NodeJS.ProcessEnv): Promise<Inbox> {
  const r = await cli(['inbox', '--name', name, '--all', '--json', '--limit', '500'], env)
  expect(r.stderr).toBe('')
  return JSON.parse(r.stdout) as Inbox
}

/** Wait for a status to be reached, re-checking after each status query (bounded). */
async function statusOf(sender: string, id: string, env: NodeJS.ProcessEnv): Promise<string> {
  return (JSON.parse((await cli(['status', id, '--name', sender, '--json'], env)).stdout) as { status: string }).status
}

describe('messages between daemon processes', () => {
  it('a DM round trip through the CLI, with status and a reply', async () => {
    const env = await home()
    const a = daemon('alice', env)
    const b = daemon('bob', env)
    await a.line(/^\+ bob /)
    await b.line(/^\+ alice /)
    const sent = await cli(['send', 'bob', 'hello', 'bob', '--name', 'alice', '--priority', 'now', '--json'], env)
    expect(sent.code).toBe(0)
    const [r] = JSON.parse(sent.stdout) as Array<{ id: string; status: string }>
    expect(r?.status).toBe('pending')
    await b.line(/^> alice: hello bob/)
    const got = await inbox('bob', env)
    expect(got.messages.map(m => m.body)).toEqual(['hello bob'])
    expect(['delivered', 'read']).toContain(await statusOf('alice', r?.id ?? '', env))
    await cli(['send', 'alice', 'hi', '--reply-to', r?.id ?? '', '--name', 'bob'], env)
    await a.line(/^> bob: hi/)
    expect((await inbox('alice', env)).messages[0]?.replyTo).toBe(r?.id)
    const bad = await cli(['send', 'carol', 'x', '--name', 'alice'], env)
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/no peer "carol" in this mesh; online: bob/)
  })

  it('the sender is killed -9 right after send returns, restarted later, and the offline recipient gets it once', async () => {
    const env = await home()
    const a = daemon('alice', env)
    let b = daemon('bob', env)
    await a.line(/^\+ bob /)
    await b.stop('SIGTERM')
    await a.line(/^- bob /)
    const sent = await cli(['send', 'bob', 'durable', 'message', '--name', 'alice', '--json'], env)
    const [r] = JSON.parse(sent.stdout) as Array<{ id: string }>
    await a.stop('SIGKILL')
    // nobody holds the message now but alice's outbox on disk
    const a2 = daemon('alice', env)
    await a2.ready()
    b = daemon('bob', env)
    await b.line(/^> alice: durable message/)
    const got = await inbox('bob', env)
    expect(got.messages.filter(m => m.id === r?.id)).toHaveLength(1)
    // a third restart of the sender does not send it again
    await a2.stop('SIGKILL')
    const a3 = daemon('alice', env)
    await b.line(/^\+ alice /)
    await a3.ready()
    expect((await inbox('bob', env)).messages.filter(m => m.id === r?.id)).toHaveLength(1)
  }, 60_000)
})
