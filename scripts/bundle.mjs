#!/usr/bin/env node
// Bundles the CLI (dist/bin.js and everything it imports) into one ES module,
// packages/cli/dist/claudemesh.mjs: Node then parses one file instead of ~700 modules, which
// halves the start of a daemon, an MCP server or a hook. classic-level stays outside (native).
import { chmod } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'cli')
const outfile = join(cli, 'dist', 'claudemesh.mjs')
await build({
  entryPoints: [join(cli, 'dist', 'bin.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['classic-level'],
  // CommonJS dependencies inside an ES module bundle still call require()
  banner: { js: "import { createRequire as __claudemeshRequire } from 'node:module'; const require = __claudemeshRequire(import.meta.url);" },
  logLevel: 'warning'
})
await chmod(outfile, 0o755)
