/** Shared files over the control socket (SPEC.md §16.6); the CLI's `file` verbs call these. */
import { z } from 'zod'
import type { MeshNode } from '../node.js'
import type { ControlServer } from './server.js'

const id = z.string().regex(/^[0-9a-f]{64}$/, 'a file id is 64 lowercase hex characters')
const path = z.string().min(1).max(4096)

export function registerFileMethods(server: ControlServer, node: MeshNode): void {
  server.register(
    'file.share',
    z
      .object({
        path,
        to: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).min(1).max(64)]),
        message: z
          .string()
          .max(16 * 1024)
          .optional()
      })
      .strict(),
    async p => node.files.share(p.path, p.to, { message: p.message })
  )
  server.register(
    'file.get',
    z
      .object({ id, dest: path.optional(), cwd: path.optional(), pin: z.boolean().optional(), from: z.string().max(128).optional() })
      .strict(),
    async p => node.files.get(p.id, p.dest, { cwd: p.cwd, pin: p.pin, from: p.from })
  )
  server.register('file.progress', z.object({ id }).strict(), async p => ({ progress: node.files.status(p.id) ?? null }))
  server.register('file.list', z.object({}).strict(), async () => ({ files: node.files.list(), maxFileBytes: node.files.maxFileBytes }))
  server.register('file.unpin', z.object({ id }).strict(), async p => ({ unpinned: await node.files.unpin(p.id) }))
}
