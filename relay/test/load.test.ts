/**
 * What keeps a relay serving many members (the relay soak, scripts/relay-soak.mjs), in small:
 * members behind a relay open no circuits through it beyond discovery's budget (no DHT served
 * over circuits, no remembered peers redialled through it), and a DM to a member not seen
 * yet is not refused.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshNode, loadOrCreateSessionKey, type Mesh, type MeshNode, type MeshNodeInit } from '../../packages/node/src/index.js'
import { FAST, homeWithMesh, untilAllSee } from '../../packages/node/test/helpers.js'
import { createLog, createRelay, type Relay } from '../src/index.js'

describe('relay under load: what members cost it', () => {
  let home: string
  let mesh: Mesh
  let cleanup: () => Promise<void>
  let relay: Relay
  let relayAddr: string
  const nodes: MeshNode[] = []

  async function member(name: string, extra: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
    const n = await createMeshNode({
      home,
      mesh: 'test',
      session: randomUUID(),
      name,
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST,
      ...extra
    })
    await n.start()
    nodes.push(n)
    return n
  }

  beforeAll(async () => {
    const h = await homeWithMesh()
    home = h.home
    mesh = h.mesh
    cleanup = h.cleanup
    relay = await createRelay({ data: join(home, 'relay'), mesh, listen: ['/ip4/127.0.0.1/tcp/0'], log: createLog('error') })
    await relay.start()
    relayAddr = relay.multiaddrs()[0] as string
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await relay?.stop()
    await cleanup()
  })

  it('members that reach only the relay ask its DHT without serving one, and redial no remembered peer through it at start', async () => {
    const ms = [await member('m0'), await member('m1'), await member('m2')]
    await untilAllSee(ms, 20_000)
    // a DHT server behind a relay is queried over circuits through the relay, each one more
    // handshake pair there: members ask the relay's DHT and serve none
    for (const m of ms) expect(m.libp2p.services.dht?.getMode()).toBe('client')
    expect(relay.libp2p.services.dht?.getMode()).toBe('server')
    // a peer remembered from an earlier run at relayed addresses only is left to discovery's
    // budget (SPEC §5.3, §5.4), not dialled on top of it at every start
    const [m0] = ms as [MeshNode]
    const gone = (await loadOrCreateSessionKey(home, 'test', randomUUID())).peerId.toString()
    const inflight = (): Set<string> => (m0.dialer as unknown as { inflight: Set<string> }).inflight
    m0.dialer.dialRemembered([{ id: gone, addrs: [`${relayAddr}/p2p-circuit/p2p/${gone}`] }])
    expect(inflight().has(gone)).toBe(false)
    // a remembered peer with a direct address is still dialled
    m0.dialer.dialRemembered([{ id: gone, addrs: ['/ip4/127.0.0.1/tcp/9', `${relayAddr}/p2p-circuit/p2p/${gone}`] }])
    expect(inflight().has(gone)).toBe(true)
  })

  it('a DM to the full id of a member this sender has never seen is accepted, held by the relay and delivered when that member starts', async () => {
    const a = await member('early')
    const session = randomUUID()
    const { peerId } = await loadOrCreateSessionKey(home, 'test', session)
    const late = peerId.toString()
    expect(a.presence.get(late)).toBeUndefined()
    const [sent] = await a.mail.send(late, 'before you joined')
    expect(sent?.to).toBe(late)
    const status = async (): Promise<string | undefined> => (await a.mail.status(sent?.id as string))?.status
    await untilAsync(async () => (await status()) === 'held', 15_000, 'the relay to hold it')
    const b = await createMeshNode({
      home,
      mesh: 'test',
      session,
      name: 'late',
      listen: [],
      relays: [relayAddr],
      registry: false,
      control: false,
      presence: FAST
    })
    const received = new Promise<string>(resolve => {
      b.addEventListener(
        'message:receive',
        e => {
          resolve(e.detail.body)
        },
        { once: true }
      )
    })
    await b.start()
    nodes.push(b)
    expect(await received).toBe('before you joined')
    await untilAsync(async () => (await status()) === 'delivered', 15_000, 'the sender to learn it was delivered')
  })
})

/** Poll an async condition with a bound (statuses live in the store, not in events alone). */
async function untilAsync(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
