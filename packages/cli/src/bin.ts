#!/usr/bin/env node
import '@claudemesh/node/polyfill'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const argv = process.argv.slice(2)
// a hook runs after every tool call of a Claude turn: `hook <event>` (the form settings use)
// loads only what a hook needs, not the whole CLI and its command parser: the build gives it a
// file of its own beside this one (scripts/bundle.mjs), ~50 KB holding only the parts of zod
// and of the node's client it uses
const HOOK = './hook.mjs'
type HookModule = { hookMain: (event: string) => Promise<number> }
/** the commands that run a node: they start from the code-cached bundle (node-bundle.ts) */
const NODE_ROLES = new Set(['daemon', 'mcp', 'courier'])

async function run(): Promise<number> {
  if (argv.length === 2 && argv[0] === 'hook') return ((await import(HOOK)) as HookModule).hookMain(argv[1] as string)
  // only from the bundle (dist/claudemesh.mjs): dist/bin.js, in development, runs what tsc built;
  // without the CommonJS file beside it (a partial copy), the ES bundle still runs every command
  if (NODE_ROLES.has(argv[0] ?? '') && import.meta.url.endsWith('/claudemesh.mjs')) {
    const nodeBundle = fileURLToPath(new URL('./claudemesh-node.cjs', import.meta.url))
    if (existsSync(nodeBundle)) return (await import('./node-bundle.js')).runNodeBundle(nodeBundle, argv)
  }
  return (await import('./index.js')).main(argv)
}
process.exit(await run())
