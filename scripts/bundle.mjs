#!/usr/bin/env node
// Bundles the CLI (dist/bin.js and everything it imports) into packages/cli/dist/claudemesh.mjs
// plus shared chunks beside it (dist/chunk-*.mjs): Node then parses a few files instead of ~700
// modules, which halves the start of a daemon, an MCP server or a hook. classic-level stays
// outside (native).
//
// Split, not one file: what the CLI imports lazily (`await import(...)`: the node package for
// `daemon`/`mcp`, the DHT and the relay transport only in meshes with bootstrap peers or relays,
// the MCP SDK only for `mcp`) lands in chunks that a process parses only when it loads them.
// A `claudemesh peers` or a hook no longer parses libp2p, and a daemon no longer parses kad-dht's
// 0.8 MB prefix table or the MCP SDK (bench/foundation.mjs: cold start, idle RSS).
// zod's translations go (plugin below): its namespace re-exports all ~45 locales (`z.locales`),
// which a bundler cannot drop, and they were 300 KB of the 600 KB zod chunk that every hook and
// every command compiles. English, the one zod uses, is imported on its own and stays.
// Whitespace and comments go: V8 keeps every module's source in memory for lazy compilation,
// and one non-Latin-1 character in a comment (a `→`) made the whole 5 MB source a two-byte
// string (10 MB of heap). Anything non-ASCII left is escaped, so every source stays one-byte.
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'cli')
const outdir = join(cli, 'dist')
// chunks of an earlier build: their names are content hashes, so old ones would pile up
for (const f of await readdir(outdir)) if (/^chunk-[A-Z0-9]+\.mjs$/.test(f)) await rm(join(outdir, f))
/** zod's `locales/index.js` (the namespace of every translation) as an empty module. */
const zodWithoutLocales = {
  name: 'zod-without-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, args =>
      /[\\/]zod[\\/]v4[\\/](core|classic)[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'empty' } : undefined
    )
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export {}', loader: 'js' }))
  }
}
/** What both builds share. */
const common = {
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  plugins: [zodWithoutLocales],
  // CommonJS dependencies inside an ES module bundle still call require()
  banner: {
    js: "import { createRequire as __claudemeshRequire } from 'node:module'; const require = __claudemeshRequire(import.meta.url);"
  },
  write: true,
  metafile: true,
  logLevel: 'warning'
}
const result = await build({
  entryPoints: { claudemesh: join(outdir, 'bin.js') },
  // chunks beside the entry: import.meta.url-relative lookups (web/, the CLI's own path) stay valid
  chunkNames: 'chunk-[hash]',
  splitting: true,
  // the hook's own file, built below
  external: ['classic-level', './hook.mjs'],
  ...common
})
// `claudemesh hook <event>` (after every tool call of a Claude turn) in one file, not split: a
// split chunk holds a shared module whole, so the hook loaded all of zod's core (220 KB) that
// the daemon's schemas need; alone, esbuild keeps only what the hook uses (~50 KB: a hook's
// CPU 170 -> 130 ms; bench/foundation.mjs hookMs)
const hook = await build({
  entryPoints: { hook: join(outdir, 'commands', 'hook.js') },
  external: ['classic-level'],
  ...common
})
// What `daemon`, `mcp` and `courier` run (packages/cli/src/node-bundle.ts): the CLI as one
// CommonJS function expression, `(function (exports, require, module, __filename, __dirname)
// {...})`, which the loader compiles through vm.Script with V8's code cache (Node 20 has none for
// ES modules). One file, not split: what a role runs is compiled from the cache, what it does not
// run is only pre-parsed (and kept as source, ~1 MB more than the split chunks a daemon loads).
// classic-level's JavaScript (and abstract-level's, which it uses) comes inside too: required from
// node_modules it was ~20 ms of every start, compiled afresh. Only its native binding stays
// outside: `binding.js` finds the prebuilt addon from its own directory.
const classicLevelBinding = {
  name: 'classic-level-binding',
  setup(b) {
    b.onResolve({ filter: /^\.\/binding$/ }, args =>
      /[\\/]classic-level[\\/]/.test(args.importer) ? { path: 'classic-level/binding.js', external: true } : undefined
    )
  }
}
const { banner: _esmBanner, outdir: _outdir, outExtension: _ext, ...cjsCommon } = common
const nodeBundle = await build({
  ...cjsCommon,
  entryPoints: [join(outdir, 'index.js')],
  outfile: join(outdir, 'claudemesh-node.cjs'),
  format: 'cjs',
  plugins: [...common.plugins, classicLevelBinding],
  // the one `import.meta` use (the CLI's own path, its web/ directory): this file sits beside the entry
  define: { 'import.meta.url': '__claudemeshUrl' },
  banner: {
    js: '(function (exports, require, module, __filename, __dirname) {"use strict";var __claudemeshUrl = require("node:url").pathToFileURL(__filename).href;'
  },
  footer: { js: '})' }
})
for (const file of [
  ...Object.keys(result.metafile.outputs),
  ...Object.keys(hook.metafile.outputs),
  ...Object.keys(nodeBundle.metafile.outputs)
]) {
  const text = await readFile(file, 'utf8')
  // esbuild already escapes strings and regexps (charset ascii); what is left sits in comments,
  // where a \u escape is as good as the character
  const ascii = text.replace(/[\u0080-\uffff]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (ascii !== text) await writeFile(file, ascii)
}
await chmod(join(outdir, 'claudemesh.mjs'), 0o755)
