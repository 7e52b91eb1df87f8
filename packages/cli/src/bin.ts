#!/usr/bin/env node
import '@claudemesh/node/polyfill'

const argv = process.argv.slice(2)
// a hook runs after every tool call of a Claude turn: `hook <event>` (the form settings use)
// loads only what a hook needs, not the whole CLI and its command parser: the build gives it a
// file of its own beside this one (scripts/bundle.mjs), ~50 KB holding only the parts of zod
// and of the node's client it uses
const HOOK = './hook.mjs'
type HookModule = { hookMain: (event: string) => Promise<number> }
const code =
  argv.length === 2 && argv[0] === 'hook'
    ? await ((await import(HOOK)) as HookModule).hookMain(argv[1] as string)
    : await (await import('./index.js')).main(argv)
process.exit(code)
