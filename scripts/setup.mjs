#!/usr/bin/env node
// One-step set-up for a fresh clone: installs pnpm 12.4.2 (through npx when it is not on
// PATH), the workspace's dependencies, and builds every package. Idempotent and quiet when
// nothing changed. Used by `npm test`, `npm run demo` and `npm run bench`.
import { execFileSync, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const PNPM = '12.4.2'

function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' })
  if (probe.status === 0 && probe.stdout.trim() === PNPM) return ['pnpm']
  return ['npx', '--yes', `pnpm@${PNPM}`]
}

function run(cmd, args) {
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
}

const [cmd, ...pre] = pnpmCommand()
run(cmd, [...pre, 'install', '--frozen-lockfile', '--reporter=silent'])
run(cmd, [...pre, '-r', '--workspace-concurrency=1', '--reporter=silent', 'run', 'build'])
