/** `claudemesh daemon`: a headless node in the foreground. */
import type { MeshNode } from '@claudemesh/node'
import { nodeStarted, nodeStarting } from '@claudemesh/node/heap'
import type { Command } from 'commander'
import { addNodeFlags, checkRelays, home, limitFlags, listenAddrs, type NodeFlags, parseGroups, resolveSession } from '../options.js'
import { esc, note, out } from '../output.js'
import { printTaskNews } from '../task-lines.js'
import { spawnCourier } from './courier.js'

/** A node configured from the shared flags, not yet started (attach listeners first). */
export async function nodeFromFlags(flags: NodeFlags, env: NodeJS.ProcessEnv, kind: 'mcp' | 'daemon'): Promise<MeshNode> {
  nodeStarting()
  // loaded here, not at the top: verbs and hooks should not pay for libp2p
  const { createMeshNode, defaultMesh } = await import('@claudemesh/node')
  const limits = limitFlags(flags.limit)
  const h = home(env)
  const mesh = await defaultMesh(h, flags.mesh)
  const session = resolveSession(flags, mesh.name, env, kind)
  const node = await createMeshNode({
    home: h,
    mesh,
    session,
    kind,
    name: flags.name,
    role: flags.role,
    groups: parseGroups(flags.groups),
    bootstrap: flags.bootstrap,
    relays: checkRelays(flags.relay),
    ...(limits != null ? { limits } : {}),
    ...listenAddrs(flags, env)
  })
  return node
}

export function daemonCommand(program: Command, env: NodeJS.ProcessEnv): void {
  addNodeFlags(program.command('daemon').description('run a headless node in the foreground; prints its multiaddrs when ready')).action(
    async (flags: NodeFlags) => {
      const node = await nodeFromFlags(flags, env, 'daemon')
      node.addEventListener('peer:join', e => {
        note(`+ ${esc(e.detail.name)} (${esc(e.detail.id.slice(-8))}) joined`)
      })
      node.addEventListener('peer:leave', e => {
        note(`- ${esc(e.detail.name)} (${esc(e.detail.id.slice(-8))}) left`)
      })
      node.addEventListener('message:receive', e => {
        const m = e.detail
        note(
          `> ${esc(m.fromName || m.from.slice(-8))}${m.group != null ? ` ${esc(m.to)}` : ''}: ${esc(m.body.split('\n')[0]?.slice(0, 200) ?? '')}`
        )
      })
      // the task news the MCP server pushes to a model (SPEC.md §14.4, §14.8), for a person
      printTaskNews(node, note)
      await node.start()
      nodeStarted()
      const info = node.info()
      note(`claudemesh: ${esc(info.name)} (${info.id}) on mesh "${info.mesh}", session ${info.session}`)
      for (const a of node.multiaddrs()) out(`${a}${a.includes('/p2p/') ? '' : `/p2p/${node.peerId}`}`)
      await new Promise<void>(resolve => {
        const stop = (signal: string): void => {
          note(`claudemesh: ${signal}, leaving the mesh`)
          spawnCourier(node, flags, env)
          void node.stop().finally(resolve)
        }
        process.once('SIGINT', () => {
          stop('SIGINT')
        })
        process.once('SIGTERM', () => {
          stop('SIGTERM')
        })
        node.addEventListener('node:stopped', e => {
          if (e.detail.reason === 'replaced') {
            note('claudemesh: a newer instance of this session took over; this one stopped')
            process.exitCode = 3
          }
          resolve()
        })
      })
    }
  )
}
