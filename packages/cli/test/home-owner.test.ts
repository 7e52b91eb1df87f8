import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, Daemon } from './helpers.js'

const NOBODY = 65534
const me = process.getuid?.() ?? -1
const dirs: string[] = []
const servers: Server[] = []
const daemons: Daemon[] = []
afterEach(async () => {
  await Promise.all(daemons.splice(0).map(async d => d.stop('SIGKILL')))
  for (const s of servers.splice(0)) s.close()
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
})

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-own-'))
  dirs.push(d)
  return d
}

/** Another user's control socket: it records every line our CLI sends it, and answers as a node would. */
async function plantedSocket(path: string, owner = NOBODY): Promise<string[]> {
  const got: string[] = []
  const server = createServer(s => {
    s.on('data', d => {
      got.push(d.toString())
      s.write('{"id":1,"ok":true,"result":{"results":[]}}\n')
    })
  })
  servers.push(server)
  await new Promise<void>(resolve => {
    server.listen(path, resolve)
  })
  await chmod(path, 0o777)
  await chown(path, owner, owner)
  return got
}

async function plantEntry(dir: string, control: string, owner = NOBODY): Promise<void> {
  const peerId = '12D3KooWPlantedPlantedPlantedPlantedPlantedPlantedXy'
  const entry = {
    v: 1,
    peerId,
    pid: process.pid,
    mesh: 'team',
    session: '00000000-0000-4000-8000-000000000000',
    name: 'bob',
    kind: 'daemon',
    addrs: [],
    control,
    incarnation: 1,
    startedAt: 1
  }
  const file = join(dir, `${peerId}.json`)
  await writeFile(file, `${JSON.stringify(entry)}\n`, { mode: 0o666 })
  await chown(file, owner, owner)
}

describe.skipIf(me !== 0)('a home another local user planted (issue 10, item 13; runs as root to play the other uid)', () => {
  it('run/<mesh> created by another uid, mode 0777, with a registry entry and socket: send refuses and the socket gets nothing', async () => {
    const home = await tmp()
    const env = { CLAUDEMESH_HOME: home, CLAUDEMESH_SESSION: '' }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const run = join(home, 'run', 'team')
    await mkdir(run, { recursive: true })
    await chmod(run, 0o777)
    await chown(run, NOBODY, NOBODY)
    const got = await plantedSocket(join(run, 'PlantedXy.sock'))
    await plantEntry(run, join(run, 'PlantedXy.sock'))
    const r = await cli(['send', 'alice', 'the secret plan'], env)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toBe(
      `claudemesh: ${run} is owned by uid ${NOBODY}, not by you (uid 0): remove it, or set CLAUDEMESH_HOME to a directory of your own\n`
    )
    expect(got).toEqual([])
    // a daemon refuses to start there too, with the same line, before writing anything
    const d = new Daemon(['--name', 'alice'], env)
    daemons.push(d)
    expect(await d.exited).not.toBe(0)
    expect(d.lines.join('\n')).toContain(`${run} is owned by uid ${NOBODY}`)
    expect(await readdir(join(home, 'sessions'), { recursive: true }).catch(() => [])).toEqual([])
  })

  it('a directory of ours that others can write, an entry planted by another uid, and a socket of theirs are each refused', async () => {
    const home = await tmp()
    const env = { CLAUDEMESH_HOME: home, CLAUDEMESH_SESSION: '' }
    expect((await cli(['mesh', 'create', 'team'], env)).code).toBe(0)
    const run = join(home, 'run', 'team')
    await mkdir(run, { recursive: true, mode: 0o700 })
    const elsewhere = await tmp()
    await chown(elsewhere, NOBODY, NOBODY)
    const got = await plantedSocket(join(elsewhere, 'evil.sock'))

    await chmod(run, 0o777) // ours, but anyone could have dropped an entry in it
    await plantEntry(run, join(elsewhere, 'evil.sock'), me)
    const writable = await cli(['send', 'alice', 'x'], env)
    expect(writable.stderr).toBe(
      `claudemesh: ${run} is writable by other users (mode 0777): chmod go-w it, remove it, or set CLAUDEMESH_HOME to a directory of your own\n`
    )

    await chmod(run, 0o700)
    await plantEntry(run, join(elsewhere, 'evil.sock')) // the entry file belongs to the other uid
    const entry = await cli(['send', 'alice', 'x'], env)
    expect(entry.stderr).toMatch(new RegExp(`^claudemesh: ${run}/\\S+\\.json is owned by uid ${NOBODY}, not by you`))

    await plantEntry(run, join(elsewhere, 'evil.sock'), me) // our entry, pointing at their socket
    const socket = await cli(['send', 'alice', 'x'], env)
    expect(socket.stderr).toBe(
      `claudemesh: ${elsewhere} is owned by uid ${NOBODY}, not by you (uid 0): remove it, or set CLAUDEMESH_HOME to a directory of your own\n`
    )
    expect(got).toEqual([])
  })

  it('a home owned by another uid is refused by every verb, mesh create included', async () => {
    const home = await tmp()
    await chown(home, NOBODY, NOBODY)
    const r = await cli(['mesh', 'create', 'team'], { CLAUDEMESH_HOME: home })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toBe(
      `claudemesh: ${home} is owned by uid ${NOBODY}, not by you (uid 0): remove it, or set CLAUDEMESH_HOME to a directory of your own\n`
    )
    expect(await readdir(home)).toEqual([])
  })
})
