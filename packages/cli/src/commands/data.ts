/** Verbs for shared state and memory, through a running local node: `state get|set|list|delete`, `remember`, `recall`, `forget`. */
import { checkSetValue } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { ago, esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean }
interface Entry {
  key: string
  value: unknown
  updatedBy: string
  updatedAt: number
}
interface Note {
  id: string
  content: string
  tags: string[]
  author: string
  createdAt: number
  score?: number
}

/** `value` is JSON when it parses as JSON, else the plain string. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v))

export function dataCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const state = program.command('state').description('shared key-value state of the mesh')
  addPickFlags(state.command('get <key>').description('read a key')).action(async (key: string, o: Flags) => {
    const r = await callNode<{ entry: Entry | null }>(o, env, 'state.get', { key })
    if (o.json === true) return outJson(r.entry)
    if (r.entry == null) throw new UsageError(`${esc(key)} is not set`)
    out(show(r.entry.value))
  })
  addPickFlags(state.command('set <key> <value>').description('set a key (the value is parsed as JSON when it can be)')).action(
    async (key: string, value: string, o: Flags) => {
      const parsed = parseValue(value)
      checkSetValue(parsed) // before sending: a value nested too deep would overflow the stack in JSON.stringify
      const r = await callNode<{ entry: Entry }>(o, env, 'state.set', { key, value: parsed })
      if (o.json === true) return outJson(r.entry)
      out(`set ${esc(r.entry.key)}`)
    }
  )
  addPickFlags(state.command('list [prefix]').description('list keys, optionally under a prefix')).action(
    async (prefix: string | undefined, o: Flags) => {
      const r = await callNode<{ entries: Entry[] }>(o, env, 'state.list', { prefix })
      if (o.json === true) return outJson(r.entries)
      if (r.entries.length === 0) return out('no keys')
      out(
        table([
          ['KEY', 'VALUE', 'BY', 'WHEN'],
          ...r.entries.map(e => [e.key, show(e.value).slice(0, 60), e.updatedBy.slice(-10), ago(e.updatedAt)])
        ])
      )
    }
  )
  addPickFlags(state.command('delete <key>').description('delete a key')).action(async (key: string, o: Flags) => {
    const r = await callNode<{ deleted: boolean }>(o, env, 'state.delete', { key })
    if (o.json === true) return outJson(r)
    out(r.deleted ? `deleted ${esc(key)}` : `${esc(key)} was not set`)
  })

  addPickFlags(program.command('remember <content...>').description('save a note to the shared memory'))
    .option('--tags <tags>', 'comma-separated tags')
    .action(async (words: string[], o: Flags & { tags?: string }) => {
      const tags =
        o.tags
          ?.split(',')
          .map(t => t.trim())
          .filter(Boolean) ?? []
      const r = await callNode<{ note: Note }>(o, env, 'memory.remember', { content: words.join(' '), tags })
      if (o.json === true) return outJson(r.note)
      out(r.note.id)
    })
  addPickFlags(program.command('recall <query...>').description('search the shared memory'))
    .option('--tags <tags>', 'only notes with all these tags (comma-separated)')
    .option('--author <peer>', 'only notes by this peer id')
    .option('--limit <n>', 'at most n results', '10')
    .action(async (words: string[], o: Flags & { tags?: string; author?: string; limit: string }) => {
      const limit = Number(o.limit)
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new UsageError('--limit takes a whole number from 1 to 100')
      const tags = o.tags
        ?.split(',')
        .map(t => t.trim())
        .filter(Boolean)
      const r = await callNode<{ results: Note[] }>(o, env, 'memory.recall', { query: words.join(' '), tags, author: o.author, limit })
      if (o.json === true) return outJson(r.results)
      if (r.results.length === 0) return out('nothing recalled')
      for (const n of r.results)
        out(
          `${esc(n.id)}  ${(n.score ?? 0).toFixed(2)}  ${n.tags.map(t => `#${esc(t)}`).join(' ')}  ${ago(n.createdAt)}\n  ${esc(n.content, true).replace(/\n/g, '\n  ')}`
        )
    })
  addPickFlags(program.command('forget <id>').description('forget a memory note')).action(async (id: string, o: Flags) => {
    const r = await callNode<{ ok: boolean }>(o, env, 'memory.forget', { id })
    if (o.json === true) return outJson(r)
    if (!r.ok) throw new UsageError(`no memory ${id} (or it was already forgotten)`)
    out(`forgot ${id}`)
  })
}
