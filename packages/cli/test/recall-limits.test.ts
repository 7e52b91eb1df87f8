/** `claudemesh recall` with a query over the bounds: a clear one-line error, nothing searched (issue 10, item 10). */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { cli, Daemon } from './helpers.js'

const daemons: Daemon[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

it('recall refuses a too-long query with a clear error, and still recalls', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cm-cli-'))
  dirs.push(dir)
  const env = { CLAUDEMESH_HOME: dir, CLAUDEMESH_SESSION: '' }
  expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
  const d = new Daemon(['--name', 'alice'], env)
  daemons.push(d)
  await d.ready()
  expect((await cli(['remember', 'the staging database lives on host db-2'], env)).code).toBe(0)
  const long = await cli(['recall', 'x'.repeat(1000)], env)
  expect(long.code).not.toBe(0)
  expect(long.stderr).toMatch(/a recall query is at most 256 characters \(this one has 1000\)/)
  expect(long.stdout).toBe('')
  const ok = await cli(['recall', 'staging'], env)
  expect(ok.code).toBe(0)
  expect(ok.stdout).toMatch(/staging database/)
}, 60_000)
