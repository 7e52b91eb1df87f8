/** `claudemesh mcp`: the stdio MCP server hosting this session's node. Nothing but MCP on stdout. */
import { nodeStarted, nodeStarting } from '@claudemesh/node/heap'
import type { Command } from 'commander'
import { addNodeFlags, checkMessageMode, type NodeFlags } from '../options.js'
import { note } from '../output.js'
import { spawnCourier } from './courier.js'
import { nodeFromFlags } from './daemon.js'

export function mcpCommand(program: Command, env: NodeJS.ProcessEnv): void {
  addNodeFlags(
    program.command('mcp').description('the stdio MCP server for a Claude Code session (session defaults to $CLAUDE_CODE_SESSION_ID)')
  )
    .option('--channels', 'also push messages as claude/channel notifications (or CLAUDEMESH_CHANNELS=1)')
    .action(async (flags: NodeFlags & { channels?: boolean }) => {
      // stdout is the MCP channel: a library that logs (Yjs does, on client-id clashes) must
      // not corrupt it
      console.log = console.error
      console.info = console.error
      checkMessageMode(flags.messageMode)
      // the young generation held at its size from here, not from the node's start on
      // (nodeFromFlags): loading the MCP SDK and our tools grew it 4 -> 8 MB, resident from then on
      nodeStarting()
      const [{ ClaudemeshServer }, { StdioServerTransport }] = await Promise.all([
        import('@claudemesh/mcp'),
        import('@modelcontextprotocol/sdk/server/stdio.js')
      ])
      const node = await nodeFromFlags(flags, env, 'mcp')
      // the hooks find this session through the registry: serve their methods before that
      const made: { server?: Awaited<ReturnType<typeof ClaudemeshServer.create>> } = {}
      await node.start({
        prepare: async n => {
          made.server = await ClaudemeshServer.create(n, {
            mode: flags.messageMode as 'push' | 'inbox' | 'off' | undefined,
            channels: flags.channels === true || env.CLAUDEMESH_CHANNELS === '1'
          })
        }
      })
      nodeStarted()
      const server = made.server
      if (server == null) throw new Error('the MCP server was not prepared')
      const transport = new StdioServerTransport()
      await new Promise<void>(resolve => {
        let done = false
        const stop = (why: string): void => {
          if (done) return
          done = true
          note(`claudemesh mcp: ${why}`)
          spawnCourier(node, flags, env)
          void server
            .close()
            .catch(() => {})
            .then(async () => node.stop())
            .finally(resolve)
        }
        transport.onclose = () => {
          stop('client disconnected, leaving the mesh')
        }
        process.stdin.once('end', () => {
          stop('stdin closed, leaving the mesh')
        })
        // Claude Code and launch may both signal us as claude exits: a repeated signal must not
        // cut the bounded hand-off of queued DMs short (SPEC.md §8.7)
        process.on('SIGINT', () => {
          stop('SIGINT')
        })
        process.on('SIGTERM', () => {
          stop('SIGTERM')
        })
        node.addEventListener('node:stopped', e => {
          if (e.detail.reason === 'replaced') note('claudemesh mcp: a newer instance of this session took over the mesh identity')
          if (!done) {
            done = true
            void server
              .close()
              .catch(() => {})
              .finally(resolve)
          }
        })
        void server.connect(transport)
      })
    })
}
