/**
 * MCP tools for shared files (SPEC.md §16.7): share_file, get_file, list_files, unpin_file.
 * File names and peer names come from peers: they are sanitized lines.
 */
import { type FileView, megabytes, type MeshNode } from '@claudemesh/node'
import { z } from 'zod'
import { line } from './fence.js'
import type { ToolFn } from './registrar.js'

const FileOut = z.object({
  id: z.string(),
  name: z.string(),
  size: z.number(),
  chunks: z.number(),
  have: z.number(),
  state: z.enum(['complete', 'partial']),
  role: z.enum(['shared', 'fetched']),
  from: z.string(),
  from_name: z.string(),
  at: z.string()
})
const ID = z.string().regex(/^[0-9a-f]{64}$/, 'a file id: 64 lowercase hex characters (from the share message or list_files)')

export function fileOut(f: FileView): z.infer<typeof FileOut> {
  return {
    id: f.id,
    name: line(f.name, 255),
    size: f.size,
    chunks: f.chunks,
    have: f.have,
    state: f.state,
    role: f.role,
    from: line(f.from, 80),
    from_name: line(f.fromName, 64),
    at: new Date(f.at).toISOString()
  }
}

export function registerFileTools(tool: ToolFn, node: MeshNode): void {
  tool(
    'share_file',
    'Share a local file with peers: it is sealed so only they can open it, kept available from this session (and from everyone who fetches it) until unpinned, and announced to them as a message with its id. to is like send_message\'s (a peer or "@group").',
    {
      path: z.string().min(1).max(4096),
      to: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).min(1).max(64)]),
      message: z
        .string()
        .max(16 * 1024)
        .optional()
        .describe('a note added to the announcement')
    },
    { file: FileOut, sent: z.array(z.object({ to: z.string(), name: z.string(), message_id: z.string(), status: z.string() })) },
    async i => {
      const r = await node.files.share(i.path, i.to, { message: i.message })
      return {
        data: {
          file: fileOut(r.file),
          sent: r.sent.map(s => ({ to: line(s.to, 80), name: line(s.name, 64), message_id: s.id, status: s.status }))
        },
        text: `shared "${line(r.file.name, 80)}" (${megabytes(r.file.size)}) as ${r.file.id}`
      }
    }
  )

  tool(
    'get_file',
    'Fetch a file shared with you, by id, from any member that holds it, and write it to dest (default: its name in the current directory; never over an existing file). An interrupted fetch resumes from the chunks already stored. By default you then keep it pinned so other members can fetch it from you.',
    {
      id: ID,
      dest: z.string().min(1).max(4096).optional(),
      pin: z.boolean().default(true).describe('keep serving it to other members until unpin_file')
    },
    { file: FileOut, path: z.string(), fetched_bytes: z.number(), reused_chunks: z.number(), holders: z.array(z.string()) },
    async i => {
      const r = await node.files.get(i.id, i.dest, { pin: i.pin })
      return {
        data: {
          file: fileOut(r.file),
          path: r.path,
          fetched_bytes: r.fetchedBytes,
          reused_chunks: r.reusedChunks,
          holders: r.holders.map(h => line(h, 80))
        },
        text: `wrote "${line(r.file.name, 80)}" (${megabytes(r.file.size)}) to ${line(r.path, 500)}`
      }
    }
  )

  tool(
    'list_files',
    'List the files this session holds: shared by it, fetched, or partly fetched.',
    {},
    { files: z.array(FileOut), max_file_bytes: z.number() },
    async () => {
      const files = node.files.list()
      return { data: { files: files.map(fileOut), max_file_bytes: node.files.maxFileBytes }, text: `${files.length} file(s)` }
    },
    true
  )

  tool(
    'unpin_file',
    'Stop holding a file: its chunks are deleted here. Once no member pins it, nobody can fetch it any more.',
    { id: ID },
    { unpinned: z.boolean() },
    async i => {
      const unpinned = await node.files.unpin(i.id)
      return { data: { unpinned }, text: unpinned ? `unpinned ${i.id}` : `this session does not hold ${i.id}` }
    }
  )
}
