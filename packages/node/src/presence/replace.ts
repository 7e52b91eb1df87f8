/**
 * Single presence on one machine (SPEC.md §6.4): an older node of this session that shares
 * our home is told, with a record signed by the session key, that it has been replaced; it
 * stops and frees the store. Nodes elsewhere learn it from our presence.
 */
import { logger } from '@libp2p/logger'
import { ControlClient } from '../control/client.js'
import { listRunning } from '../discovery/registry.js'
import type { Ed25519PrivateKey } from '../identity/keys.js'
import { signRecord } from './record.js'

const log = logger('claudemesh:presence')

export async function replaceOlderIncarnations(
  home: string,
  mesh: { name: string; id: string },
  key: Ed25519PrivateKey,
  peerId: string,
  incarnation: number
): Promise<void> {
  const olders = (await listRunning(home, mesh.name)).filter(e => e.peerId === peerId)
  for (const e of olders) {
    const record = await signRecord(mesh.id, key, {
      v: 1,
      peer: key.publicKey.raw,
      inc: incarnation,
      seq: 0,
      at: Date.now(),
      addrs: [],
      gone: false,
      body: new Uint8Array(0)
    })
    try {
      const client = await ControlClient.connect(e.control, { timeoutMs: 2_000 })
      await client.call('replace', { record: Buffer.from(record).toString('base64') }).finally(() => {
        client.close()
      })
    } catch (err) {
      log('could not tell the older node (pid %d) it was replaced: %s', e.pid, (err as Error).message)
    }
  }
}
