import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeFrame, type MeshNode, openStore, SESSION_LAYOUT, paths, sublevel } from '../src/index.js'
import { checkCron, firstDue, localZone, nextCron, parseDuration } from '../src/schedule/when.js'
import { homeWithMesh, received, startNode, until, untilAllSee } from './helpers.js'

const nodes: MeshNode[] = []
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => n.stop({ flushMs: 0 })))
  await Promise.all(cleanups.splice(0).map(async c => c()))
})

async function start(home: string, name: string, session = randomUUID()): Promise<MeshNode> {
  const n = await startNode({ home, name, session })
  nodes.push(n)
  return n
}

describe('when a schedule fires', () => {
  it('parses durations, times and cron, and refuses what cannot fire', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('90')).toBe(90_000)
    expect(() => parseDuration('soon')).toThrow(/not a duration/)
    const now = Date.parse('2026-01-01T00:02:30Z')
    expect(firstDue({ in: '10m' }, now)).toBe(now + 600_000)
    expect(firstDue({ at: '2026-01-01T01:00:00Z' }, now)).toBe(Date.parse('2026-01-01T01:00:00Z'))
    expect(() => firstDue({ at: '2025-12-31T00:00:00Z' }, now)).toThrow(/in the past/)
    expect(() => firstDue({ at: '2027-06-01T00:00:00Z' }, now)).toThrow(/more than a year ahead/)
    expect(() => firstDue({ in: '400d' }, now)).toThrow(/more than a year ahead/)
    expect(checkCron('*/5 * * * *', 'UTC', now)).toBe(Date.parse('2026-01-01T00:05:00Z'))
    expect(nextCron('*/5 * * * *', 'UTC', Date.parse('2026-01-01T00:05:00Z'))).toBe(Date.parse('2026-01-01T00:10:00Z'))
    expect(() => checkCron('* * * * * *', 'UTC', now)).toThrow(/invalid cron/)
    expect(() => checkCron('61 * * * *', 'UTC', now)).toThrow(/invalid cron/)
    expect(() => checkCron('0 0 31 2 *', 'UTC', now)).toThrow(/never fires/)
  })
})

describe("the node's time zone", () => {
  const tz = process.env.TZ
  const DateTimeFormat = Intl.DateTimeFormat
  afterEach(() => {
    Intl.DateTimeFormat = DateTimeFormat
    if (tz == null) delete process.env.TZ
    else process.env.TZ = tz
  })
  const setTz = (value: string | undefined): void => {
    if (value == null) delete process.env.TZ
    else process.env.TZ = value
  }

  it('is the zone Date reads local time in, named as ICU names it where TZ is no Olson name', () => {
    const intl = (): string | undefined => Intl.DateTimeFormat().resolvedOptions().timeZone
    for (const [value, name] of [
      ['Europe/Paris', 'Europe/Paris'],
      [':America/New_York', 'America/New_York'],
      ['posix/Asia/Tokyo', 'Asia/Tokyo'],
      ['EST5EDT', undefined], // a POSIX rule: ICU's name for it
      [':/etc/localtime', undefined] // a path: ICU's answer
    ] as const) {
      setTz(value)
      expect(localZone(), value).toBe(name ?? intl())
      // the name reads the same wall clock as Date's local getters, winter and summer
      for (const at of [Date.parse('2026-01-15T12:34:00Z'), Date.parse('2026-07-15T12:34:00Z')]) {
        const parts = new Intl.DateTimeFormat('en-US', {
          timeZone: localZone(),
          hour: 'numeric',
          minute: 'numeric',
          hourCycle: 'h23'
        }).formatToParts(at)
        const d = new Date(at)
        expect(
          parts.filter(p => p.type !== 'literal').map(p => Number(p.value)),
          value
        ).toEqual([d.getHours(), d.getMinutes()])
      }
    }
  })

  // an Intl.DateTimeFormat loads ICU's formatting data: ~20 ms and ~8 MB of RSS for the life of
  // the process, in every session that holds a cron schedule
  it.skipIf(!existsSync('/usr/share/zoneinfo/Europe/Paris'))(
    'reads cron in its own zone without an Intl.DateTimeFormat, any other through one',
    () => {
      setTz('Europe/Paris')
      let made = 0
      Intl.DateTimeFormat = new Proxy(DateTimeFormat, {
        construct: (target, args) => {
          made++
          return Reflect.construct(target, args) as object
        }
      })
      const after = Date.parse('2026-01-01T00:00:00Z')
      expect(localZone()).toBe('Europe/Paris')
      expect(checkCron('0 9 * * *', localZone(), after)).toBe(Date.parse('2026-01-01T08:00:00Z'))
      expect(nextCron('0 9 * * *', 'Europe/Paris', Date.parse('2026-06-30T12:00:00Z'))).toBe(Date.parse('2026-07-01T07:00:00Z'))
      expect(made).toBe(0)
      // a schedule made in another zone keeps that zone's clock (croner keeps a formatter per zone: one no other test reads)
      expect(nextCron('0 9 * * *', 'Asia/Kathmandu', after)).toBe(Date.parse('2026-01-01T03:15:00Z'))
      expect(made).toBe(1)
    }
  )
})

describe('scheduled messages', () => {
  it('a reminder to "me" arrives in the own inbox once; bad input is refused and writes nothing', async () => {
    const h = await homeWithMesh()
    cleanups.push(h.cleanup)
    const a = await start(h.home, 'alice')
    const bad: Array<[Parameters<MeshNode['schedules']['add']>[0], RegExp]> = [
      [{ to: 'me', message: 'x', at: '2001-01-01T00:00:00Z' }, /in the past/],
      [{ to: 'me', message: 'x', in: '2y' }, /not a duration/],
      [{ to: 'me', message: 'x', cron: '*/5 * * *' }, /invalid cron/],
      [{ to: 'me', message: '  ', in: '1m' }, /empty/],
      [{ to: 'me', message: 'x'.repeat(64 * 1024 + 1), in: '1m' }, /limit is 65536 bytes/],
      [{ to: 'me', message: 'x', in: '1m', cron: '* * * * *' }, /exactly one of at, in or cron/],
      [{ to: 'carol', message: 'x', in: '1m' }, /no peer "carol"/]
    ]
    for (const [input, re] of bad) await expect(a.schedules.add(input)).rejects.toThrow(re)
    expect(await a.schedules.list({ all: true })).toEqual([])
    const got = received(a)
    const s = await a.schedules.add({ to: 'me', message: 'stand up and stretch', in: '1s', priority: 'now' })
    expect((await a.schedules.list()).map(x => x.id)).toEqual([s.id])
    const m = await got
    await until(a.schedules, ['schedule:fired'], () => a.schedules.size === 0, 10_000, 'the occurrence recorded')
    expect(m).toMatchObject({ from: a.peerId, to: a.peerId, body: 'stand up and stretch', priority: 'now' })
    expect(await a.schedules.list()).toEqual([])
    const [done] = await a.schedules.list({ all: true })
    expect(done).toMatchObject({ id: s.id, state: 'done', fired: 1 })
    expect(done?.last?.results.map(r => r.id)).toEqual([m.id])
    expect((await a.mail.inbox.list({ unreadOnly: false })).filter(x => x.body === 'stand up and stretch')).toHaveLength(1)
  })

  it('a cancelled schedule never fires; cancelling an unknown id is an error', async () => {
    const h = await homeWithMesh()
    cleanups.push(h.cleanup)
    const a = await start(h.home, 'alice')
    const s = await a.schedules.add({ to: 'me', message: 'never', in: '1h' })
    const c = await a.schedules.cancel(s.id)
    expect(c.state).toBe('cancelled')
    expect(await a.schedules.list()).toEqual([])
    await expect(a.schedules.cancel(s.id)).rejects.toThrow(/no active schedule/)
  })

  it('an occurrence fired again after a restart (its record lost) reaches the recipient once', async () => {
    const h = await homeWithMesh()
    cleanups.push(h.cleanup)
    const session = randomUUID()
    let a = await start(h.home, 'alice', session)
    const b = await start(h.home, 'bob')
    await untilAllSee([a, b])
    const got = received(b, m => m.body === 'ping from the past')
    const before = await a.schedules.add({ to: ['bob', '@all'], message: 'ping from the past', in: '1s' })
    const first = await got
    await until(a.schedules, ['schedule:fired'], () => a.schedules.size === 0, 10_000, 'the occurrence recorded')
    const [fired] = await a.schedules.list({ all: true })
    expect(fired?.last?.results.map(r => r.id)).toContain(first.id)
    await a.stop({ flushMs: 0 })
    nodes.splice(nodes.indexOf(a), 1)
    // as if alice died after sending and before recording the occurrence: the pre-fire record is back
    const db = await openStore(paths.data(h.home, 'test', session), SESSION_LAYOUT)
    await db.batch([{ type: 'put', sublevel: sublevel(db, 'schedule'), key: `j!${before.id}`, value: encodeFrame(before) } as never], {
      sync: true
    })
    await db.close()
    a = await start(h.home, 'alice', session)
    const dmId = fired?.last?.results.find(r => r.to === b.peerId)?.id ?? ''
    // fired again at start (the record said it was due), under the same ids
    await until(a.schedules, ['schedule:fired'], () => a.schedules.size === 0, 20_000, 'the re-fire')
    expect(a.schedules.stats.fired).toBe(1)
    // the re-sent DM reaches bob's node, which acks it (its id is already in the inbox) and keeps one copy
    const delivered = async (): Promise<boolean> => ['delivered', 'read'].includes((await a.mail.status(dmId))?.status ?? '')
    for (const deadline = Date.now() + 20_000; !(await delivered()) && Date.now() < deadline; ) {
      await new Promise(resolve => {
        a.addEventListener('message:status', resolve, { once: true })
        setTimeout(resolve, 500)
      })
    }
    expect(await delivered()).toBe(true)
    const copies = (await b.mail.inbox.list({ unreadOnly: false })).filter(m => m.body === 'ping from the past')
    // one DM and one @all message, each once
    expect(copies.map(m => m.id).sort()).toEqual(fired?.last?.results.map(r => r.id).sort())
  })
})
