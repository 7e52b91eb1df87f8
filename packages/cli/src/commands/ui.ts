/**
 * `claudemesh ui`: a live view of the mesh in the browser, as one running session sees it
 * (SPEC.md §19). This process serves the page and talks to the node over its control socket,
 * so the same command works for a daemon and for a session's node inside `claudemesh mcp`,
 * and nothing of HTTP runs inside a node (whose stdout may be the MCP channel).
 */
import { join } from 'node:path'
import { ControlClient } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { home } from '../options.js'
import { esc, note, out, outJson, UsageError } from '../output.js'
import { type PickFlags, pickNode } from '../pick.js'
import { UiFeed } from '../ui/feed.js'
import { openBrowser } from '../ui/open.js'
import type { UiServer } from '../ui/server.js'
import { addPickFlags } from './verbs.js'

type Flags = PickFlags & { json?: boolean; port?: string; open: boolean }

export function uiCommand(program: Command, env: NodeJS.ProcessEnv): void {
  addPickFlags(program.command('ui').description('a live view of the mesh in the browser (127.0.0.1, secret URL); serves until Ctrl-C'))
    .option('--port <n>', 'port on 127.0.0.1 (default: a free one)')
    .option('--no-open', 'print the URL only, do not open a browser')
    .action(async (o: Flags) => {
      const port = o.port == null ? 0 : Number(o.port)
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port takes a whole number from 1 to 65535')
      // loaded here: every other command (a hook runs at each tool use) would parse node:http for nothing
      const { UiServer } = await import('../ui/server.js')
      const entry = await pickNode(o, env)
      const client = await ControlClient.connect(entry.control)
      const feed = new UiFeed(client)
      let server: UiServer | undefined
      try {
        await feed.start()
        server = new UiServer({ client, feed, port })
        await server.start()
        if (o.json === true) outJson({ url: server.url, port: server.port })
        else out(server.url)
        note(`claudemesh: the mesh as ${esc(entry.name)} sees it, on ${server.url.replace(/\/t\/.*/, '/')}; Ctrl-C stops`)
        const cleanup = o.open ? await openBrowser(server.url, join(home(env), 'run'), server.port, env) : async () => {}
        await untilStopped(feed)
        await cleanup()
      } finally {
        feed.stop()
        await server?.stop()
        client.close()
      }
    })
}

/** Until Ctrl-C or SIGTERM (exit 0), or until the node stops (exit 1). */
async function untilStopped(feed: UiFeed): Promise<void> {
  await new Promise<void>(resolve => {
    const stop = (): void => {
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    feed.subscribe(section => {
      if (section !== 'gone') return
      note('claudemesh: the node stopped; the mesh view closes')
      process.exitCode = 1
      resolve()
    })
  })
}
